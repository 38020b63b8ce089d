/**
 * Every key in the LevelDB data dir, in one table (after bcoin's wallet/layout.js). Keys are UTF-8
 * strings; each module owns the prefixes listed against it and touches no other. Values are UTF-8:
 * decimal integers or JSON records. Fixed-width hex indexes keep range scans in index order.
 *
 *   prefix              value                          owner                 meaning
 *   m!schema            "1"                            store/db.ts           schema version of the data dir
 *   m!network           "regtest"                      store/db.ts           network the data dir belongs to
 *   m!descriptor        "8-char BIP380 checksum"       store/db.ts           cold descriptor it belongs to
 *   m!created           ISO-8601 time                  store/db.ts           when the data dir was made
 *   a!next              decimal                        service/deposits.ts   next unissued index on cold chain 0
 *   a!used              decimal, -1 for none           service/deposits.ts   highest chain-0 index that received funds
 *   a!i!<index:8 hex>   JSON AddressRecord             service/deposits.ts   an issued deposit address
 *   a!r!<scope>!<id>    decimal index                  service/deposits.ts   requestId → index (idempotency)
 *   a!a!<address>       decimal index                  service/deposits.ts   address → index (lookup)
 *   u!<seq:12 hex>      JSON AuditRecord               audit/log.ts          audit record number seq (from 0, no gaps), hash-chained
 *                                                                             to record seq-1; append-only, written in the batch of the
 *                                                                             change it records; the chain head is the last row, never
 *                                                                             stored apart (a separate head key could go stale)
 *   e!<seq:12 hex>      JSON CustodyEvent              service/events.ts     the durable event feed, replayed by events.since
 *   o!frozen            JSON {reason, by, at}          service/operator.ts   present while an operator has frozen the daemon
 *   c!tip               JSON {height, hash}            service/ledger.ts     the last block applied (absent before the first)
 *   c!h!<height:8 hex>  block hash (display hex)       service/ledger.ts     height → hash of every applied block, to find a fork point
 *   c!u!<height:8 hex>  JSON BlockUndo                 service/ledger.ts     what applying that block changed, to roll it back
 *   d!o!<txid>:<vout:8 hex>  JSON DepositRecord       service/ledger.ts     one deposit (an output paying a cold chain-0 address)
 *   d!q!<seq:12 hex>    deposit key                    service/ledger.ts     deposits by the event seq of their last change (deposit.list)
 *   x!<txid>:<vout:8 hex>   JSON UtxoRecord           service/ledger.ts     an output paying a hot or cold script, spent or not
 *   w!next              decimal                        service/withdrawals.ts  number of the next withdrawal id
 *   w!w!<id>            JSON WithdrawalRecord          service/withdrawals.ts  one withdrawal (ids sort in creation order)
 *   w!r!<scope>!<id>    withdrawal id                  service/withdrawals.ts  requestId → withdrawal (idempotency)
 *   w!t!<txid>          JSON PayoutRecord              service/payouts.ts      a signed transaction of ours (withdrawals, sweep, fee bump),
 *                                                                             written BEFORE it is broadcast
 *   w!change            decimal                        service/payouts.ts      next hot chain-1 (change) index
 *   w!sweep             decimal                        service/payouts.ts      next cold chain-1 index, for hot→cold sweeps and the change
 *                                                                             of cold PSBT sweeps alike (one counter: no address paid twice)
 *   s!next              decimal                        service/sweeps.ts       number of the next sweep id
 *   s!s!<id>            JSON SweepRecord               service/sweeps.ts       one cold PSBT sweep: the proposal (base64), its coins and outputs,
 *                                                                             and once imported the txid that service/payouts.ts follows
 *   s!refill            decimal                        service/sweeps.ts       next hot chain-0 index for refills from cold
 *   y!audit             decimal                        service/audit-sink.ts   last audit seq delivered to syslog (with all before it); a
 *                                                                             restart resends from the next one
 */

export const SCHEMA_VERSION = 1;

export const META = {
  schema: 'm!schema',
  network: 'm!network',
  descriptor: 'm!descriptor',
  created: 'm!created',
} as const;

export const ADDR = {
  next: 'a!next',
  used: 'a!used',
  /** Range bounds of the a!i! rows. */
  recordsFrom: 'a!i!',
  recordsTo: 'a!i!~',
  record: (index: number): string => `a!i!${index.toString(16).padStart(8, '0')}`,
  requestId: (scope: string, requestId: string): string => `a!r!${scope}!${requestId}`,
  address: (address: string): string => `a!a!${address}`,
} as const;

export const EVENTS = {
  from: 'e!',
  to: 'e!~',
  record: (seq: number): string => `e!${seq.toString(16).padStart(12, '0')}`,
} as const;

export const OPERATOR = {
  frozen: 'o!frozen',
} as const;

/** 12 hex digits = 48 bits: 2^48 records is far beyond any log's life, and stays a safe integer. */
export const AUDIT_SEQ_MAX = 2 ** 48 - 1;

export const AUDIT = {
  /** Range bounds of the u! rows (hex digits sort below '~'). */
  from: 'u!',
  to: 'u!~',
  record: (seq: number): string => `u!${seq.toString(16).padStart(12, '0')}`,
} as const;

export const CHAIN = {
  tip: 'c!tip',
  hash: (height: number): string => `c!h!${height.toString(16).padStart(8, '0')}`,
  undo: (height: number): string => `c!u!${height.toString(16).padStart(8, '0')}`,
} as const;

const outpoint = (txid: string, vout: number): string => `${txid}:${vout.toString(16).padStart(8, '0')}`;

export const DEPOSITS = {
  from: 'd!o!',
  to: 'd!o!~',
  record: (txid: string, vout: number): string => `d!o!${outpoint(txid, vout)}`,
  bySeqFrom: 'd!q!',
  bySeqTo: 'd!q!~',
  bySeq: (seq: number): string => `d!q!${seq.toString(16).padStart(12, '0')}`,
} as const;

export const UTXOS = {
  from: 'x!',
  to: 'x!~',
  record: (txid: string, vout: number): string => `x!${outpoint(txid, vout)}`,
} as const;

export const WITHDRAWALS = {
  next: 'w!next',
  from: 'w!w!',
  to: 'w!w!~',
  record: (id: string): string => `w!w!${id}`,
  requestId: (scope: string, requestId: string): string => `w!r!${scope}!${requestId}`,
  payoutsFrom: 'w!t!',
  payoutsTo: 'w!t!~',
  payout: (txid: string): string => `w!t!${txid}`,
  changeIndex: 'w!change',
  sweepIndex: 'w!sweep',
} as const;

export const SWEEPS = {
  next: 's!next',
  from: 's!s!',
  to: 's!s!~',
  record: (id: string): string => `s!s!${id}`,
  refillIndex: 's!refill',
} as const;

export const SHIPPING = {
  auditShipped: 'y!audit',
} as const;

/** Sweep ids: "sw-" and 8 hex digits (they name the files operators carry: short, sorting in creation order). */
export const sweepId = (n: number): string => `sw-${n.toString(16).padStart(8, '0')}`;

/** Withdrawal ids: "wd-" and 12 hex digits, so the ids sort in creation order. */
export const withdrawalId = (n: number): string => `wd-${n.toString(16).padStart(12, '0')}`;
