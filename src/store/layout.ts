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
 *
 * Later modules add their rows here (chain, utxos, withdrawals, sweeps, events, audit).
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
