/**
 * Cold sweeps through PSBT files (DESIGN §6, issue 7). `create` picks confirmed cold coins, reserves them,
 * builds the BIP174 proposal (wallet/psbt.ts) and writes it to the outbox as `sweep-<id>.psbt` with a
 * base64 twin; `import` takes the files the custodians signed, keeps only signatures that verify against
 * the proposal it recorded, finalizes, and hands the transaction to service/payouts.ts, which writes it
 * before sending it and follows it to confirmation like any transaction of ours.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Block, Psbt, type Transaction } from 'bitcoinjs-lib';
import type { ChainBackend } from '../chain/backend.js';
import { CustodyError } from '../errors.js';
import type { AuditLog } from '../audit/log.js';
import { writeFileAtomic } from '../files/atomic-write.js';
import type { BatchOp, Store } from '../store/db.js';
import { SWEEPS, sweepId } from '../store/layout.js';
import type { Clock } from '../types.js';
import type { Deriver } from '../wallet/derive.js';
import { decodePsbt, encodePsbt } from '../wallet/psbt-file.js';
import { buildSweepPsbt, finalizeSweep, inputSigners, keyName, signaturesOf, unsignedTx, type SweepInput, type VerifiedSignature } from '../wallet/psbt.js';
import { planSweep } from '../wallet/sweep-plan.js';
import type { CustodyEvent, EventLog } from './events.js';
import type { Ledger } from './ledger.js';
import type { PayoutRecord, PayoutState, Payouts } from './payouts.js';
import type { UtxoRecord } from './utxo-set.js';

export type SweepKind = 'refill' | 'consolidate';
export type SweepState = 'proposed' | 'cancelled' | PayoutState;

export interface SweepRecord {
  readonly id: string;
  readonly kind: SweepKind;
  /** The proposal as the daemon built it (base64): the only PSBT an import is compared with. */
  readonly psbt: string;
  readonly unsignedTxid: string;
  readonly inputs: ReadonlyArray<{ readonly txid: string; readonly vout: number; readonly chain: 0 | 1; readonly index: number; readonly valueSats: string }>;
  readonly outputs: ReadonlyArray<{ readonly vout: number; readonly address: string; readonly valueSats: string; readonly role: 'hot' | 'cold-change'; readonly chain: 0 | 1; readonly index: number }>;
  readonly amountSats: string;
  readonly feeSats: string;
  readonly vbytes: number;
  readonly feeRate: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly files: { readonly psbt: string; readonly base64: string };
  readonly state: 'proposed' | 'cancelled' | 'imported';
  readonly txid: string | null;
  readonly importedAt: string | null;
  readonly importedBy: string | null;
}

/** What RPC answers: the record without the PSBT text, with the state of its transaction. */
export interface SweepView extends Omit<SweepRecord, 'psbt' | 'state' | 'amountSats' | 'feeSats'> {
  readonly state: SweepState;
  readonly amountSats: number;
  readonly feeSats: number;
  readonly height: number | null;
}

export interface SweepOptions {
  readonly outbox: string;
  readonly maxFeeSats: bigint;
  readonly maxInputs: number;
  /** Confirmations a cold coin needs before a sweep may spend it (the deposit confirmations). */
  readonly minConfirmations: number;
  readonly lookahead: number;
  /** Propose a refill by itself when the hot balance falls below hot.minSats. */
  readonly autoRefill: boolean;
  readonly clock?: Clock;
  readonly audit?: AuditLog;
  readonly log?: (line: string) => void;
}

export type SweepRequest = { readonly kind: 'refill'; readonly amountSats: bigint } | { readonly kind: 'consolidate'; readonly maxInputs?: number };

export class Sweeps {
  private readonly records = new Map<string, SweepRecord>();
  private next: number;
  private refillNext: number;
  private serial: Promise<unknown> = Promise.resolve();
  private readonly clock: Clock;
  /** The last failed automatic refill: retried after an hour, or at once when the cold balance changed. */
  private autoRefillFailed: { at: number; coldSats: bigint } | null = null;

  private constructor(
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly ledger: Ledger,
    private readonly payouts: Payouts,
    private readonly backend: ChainBackend,
    private readonly derivers: { readonly cold: Deriver; readonly hot: Deriver },
    private readonly opts: SweepOptions,
    counters: { next: number; refill: number },
  ) {
    this.next = counters.next;
    this.refillNext = counters.refill;
    this.clock = opts.clock ?? Date.now;
  }

  static async open(store: Store, events: EventLog, ledger: Ledger, payouts: Payouts, backend: ChainBackend, derivers: { cold: Deriver; hot: Deriver }, opts: SweepOptions): Promise<Sweeps> {
    const [next, refill] = await store.getMany([SWEEPS.next, SWEEPS.refillIndex]);
    const s = new Sweeps(store, events, ledger, payouts, backend, derivers, opts, { next: next === undefined ? 1 : Number(next), refill: refill === undefined ? 0 : Number(refill) });
    for (const [, v] of await store.range(SWEEPS.from, SWEEPS.to, 100_000)) {
      const r = JSON.parse(v) as SweepRecord;
      s.records.set(r.id, r);
    }
    if (opts.autoRefill) payouts.onHotLow = (sats) => void s.autoRefill(sats);
    return s;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  private now(): string {
    return new Date(this.clock()).toISOString();
  }

  async list(): Promise<SweepView[]> {
    return Promise.all([...this.records.values()].map((r) => this.view(r)));
  }

  async get(id: string): Promise<SweepView> {
    return this.view(this.record(id));
  }

  private record(id: string): SweepRecord {
    const r = this.records.get(id);
    if (r === undefined) throw new CustodyError('SWEEP_NOT_FOUND', `id: no sweep ${id}`, { field: 'id' });
    return r;
  }

  private async view(r: SweepRecord): Promise<SweepView> {
    const { psbt: _psbt, ...rest } = r;
    let state: SweepState = r.state === 'imported' ? 'signed' : r.state;
    let height: number | null = null;
    if (r.txid !== null) {
      const p = await this.payouts.payout(r.txid);
      if (p !== undefined) {
        state = p.state;
        height = p.height;
      }
    }
    return { ...rest, state, height, amountSats: Number(r.amountSats), feeSats: Number(r.feeSats) };
  }

  // --- proposing ----------------------------------------------------------------------------------

  /** Confirmed cold coins no other sweep holds, with enough confirmations. */
  private spendable(): UtxoRecord[] {
    return [...this.ledger.utxos.values()].filter(
      (u) => u.wallet === 'cold' && u.height !== null && u.spentBy === null && u.reservedBy === null && this.ledger.confirmationsOf(u.height) >= this.opts.minConfirmations,
    );
  }

  create(req: SweepRequest, feeRate: number | undefined, actor: string): Promise<SweepView> {
    return this.exclusive(async () => this.view(await this.propose(req, feeRate, actor)));
  }

  private async propose(req: SweepRequest, feeRateGiven: number | undefined, actor: string): Promise<SweepRecord> {
    const feeRate = feeRateGiven ?? (await this.payouts.feeRate());
    const cold = this.derivers.cold;
    const coins = this.spendable();
    // Never an address that was paid before: the counter, any live hot receive coin, and what the ledger
    // has seen used (it watches `lookahead` beyond the highest used index).
    const hotIndex = Math.max(this.refillNext, this.highestHotReceive() + 1, this.ledger.scripts.highestWatched('hot', 0) - this.opts.lookahead + 1);
    const hotOut = this.derivers.hot.derive(0, hotIndex);
    // The change index is only taken (and recorded) when the plan has a change output.
    const changePreview = cold.derive(1, 0);
    const plan = planSweep({
      coins: coins.map((c) => ({ id: `${c.txid}:${c.vout}`, value: BigInt(c.valueSats) })),
      descriptor: cold.descriptor,
      feeRate,
      maxFeeSats: this.opts.maxFeeSats,
      ...(req.kind === 'refill'
        ? { kind: 'refill' as const, amountSats: req.amountSats, destination: hotOut.script, changeScript: changePreview.script }
        : { kind: 'consolidate' as const, maxInputs: Math.min(req.maxInputs ?? this.opts.maxInputs, this.opts.maxInputs), destination: changePreview.script }),
    });
    const byId = new Map(coins.map((c) => [`${c.txid}:${c.vout}`, c]));
    const chosen = plan.coins.map((c) => byId.get(c.id) as UtxoRecord);
    const ops: BatchOp[] = [];
    const outputs: Array<{ value: bigint; out: ReturnType<Deriver['derive']>; role: 'hot' | 'cold-change' }> = [];
    const needsColdIndex = req.kind === 'consolidate' || plan.changeSats !== null;
    let coldIndex: number | null = null;
    if (needsColdIndex) {
      const taken = this.payouts.takeColdChangeIndex();
      coldIndex = taken.index;
      ops.push(taken.op);
    }
    if (req.kind === 'refill') {
      outputs.push({ value: req.amountSats, out: hotOut, role: 'hot' });
      if (plan.changeSats !== null) outputs.push({ value: plan.changeSats, out: cold.derive(1, coldIndex as number), role: 'cold-change' });
    } else {
      outputs.push({ value: plan.changeSats ?? 0n, out: cold.derive(1, coldIndex as number), role: 'cold-change' });
    }
    const inputs: SweepInput[] = [];
    const prevTxs = await this.previousTransactions(chosen);
    for (const c of chosen) inputs.push({ txid: c.txid, vout: c.vout, value: BigInt(c.valueSats), prevTx: prevTxs.get(c.txid) as Uint8Array, out: cold.derive(c.chain, c.index) });
    const psbt = buildSweepPsbt(inputs, outputs, cold.descriptor.keys);
    const id = sweepId(this.next);
    const files = { psbt: join(this.opts.outbox, `sweep-${id}.psbt`), base64: join(this.opts.outbox, `sweep-${id}.base64`) };
    const at = this.now();
    const record: SweepRecord = {
      id,
      kind: req.kind,
      psbt: psbt.toBase64(),
      unsignedTxid: unsignedTx(psbt).getId(),
      inputs: chosen.map((c) => ({ txid: c.txid, vout: c.vout, chain: c.chain, index: c.index, valueSats: c.valueSats })),
      outputs: outputs.map((o, vout) => ({ vout, address: o.out.address, valueSats: o.value.toString(), role: o.role, chain: o.out.chain, index: o.out.index })),
      amountSats: (req.kind === 'refill' ? req.amountSats : plan.changeSats ?? 0n).toString(),
      feeSats: plan.feeSats.toString(),
      vbytes: plan.vbytes,
      feeRate,
      createdAt: at,
      createdBy: actor,
      files,
      state: 'proposed',
      txid: null,
      importedAt: null,
      importedBy: null,
    };
    const previous = chosen.map((c) => this.ledger.utxos.get(c.txid, c.vout));
    const reserved = this.ledger.utxos.reserve(chosen, `sweep:${id}`);
    for (const r of reserved.records) this.ledger.utxos.put(r);
    ops.push(...reserved.ops, { type: 'put', key: SWEEPS.record(id), value: JSON.stringify(record) }, { type: 'put', key: SWEEPS.next, value: String(this.next + 1) });
    if (req.kind === 'refill') ops.push({ type: 'put', key: SWEEPS.refillIndex, value: String(hotIndex + 1) });
    let e: { event: CustodyEvent; ops: BatchOp[] };
    try {
      // The files first: a record whose files were never written would send operators looking for nothing.
      mkdirSync(this.opts.outbox, { recursive: true, mode: 0o700 });
      writeFileAtomic(files.psbt, encodePsbt(psbt), { overwrite: true }, 0o644);
      writeFileAtomic(files.base64, Buffer.from(`${record.psbt}\n`), { overwrite: true }, 0o644);
      // Event and audit records are appended only now, in the turn of the commit (audit/log.ts contract):
      // a failed file write above must not leave a sequence number that is never stored.
      // The audit record first: it is the append that can be refused, before any event number is taken.
      if (this.opts.audit !== undefined) ops.push(...this.opts.audit.append(actor, 'sweep.propose', { id, kind: req.kind, amountSats: Number(record.amountSats), feeSats: Number(record.feeSats), unsignedTxid: record.unsignedTxid, inputs: chosen.length, outputs: record.outputs.map((o) => `${o.role}:${o.address}`) }).ops);
      e = this.events.append('sweep.proposed', { id, kind: req.kind, amountSats: Number(record.amountSats), feeSats: Number(record.feeSats), unsignedTxid: record.unsignedTxid, inputs: chosen.length });
      ops.push(...e.ops);
      await this.store.commit(ops);
    } catch (err) {
      for (const r of previous) if (r !== undefined) this.ledger.utxos.put(r);
      if (err instanceof CustodyError) throw err;
      throw new CustodyError('STORE_IO', `sweep ${id}: could not write the proposal (${(err as Error).message})`);
    }
    this.next++;
    if (req.kind === 'refill') {
      this.refillNext = hotIndex + 1;
      this.ledger.scripts.extend('hot', 0, hotIndex + this.opts.lookahead);
    }
    this.records.set(id, record);
    this.events.announce([e.event]);
    this.opts.log?.(`sweeps: ${id} proposed (${req.kind}, ${record.amountSats} sats, fee ${record.feeSats}): ${files.psbt}`);
    return record;
  }

  private highestHotReceive(): number {
    let highest = -1;
    for (const u of this.ledger.utxos.values()) if (u.wallet === 'hot' && u.chain === 0) highest = Math.max(highest, u.index);
    return highest;
  }

  /** Each coin's whole funding transaction (BIP174 nonWitnessUtxo), read from its block: no txindex needed. */
  private async previousTransactions(coins: readonly UtxoRecord[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    const byHeight = new Map<number, Set<string>>();
    for (const c of coins) {
      const set = byHeight.get(c.height as number) ?? new Set<string>();
      set.add(c.txid);
      byHeight.set(c.height as number, set);
    }
    for (const [height, txids] of byHeight) {
      const block = Block.fromBuffer(Buffer.from(await this.backend.getBlockRaw(await this.backend.getBlockHash(height))));
      for (const tx of block.transactions ?? []) if (txids.has(tx.getId())) out.set(tx.getId(), tx.toBuffer());
      for (const txid of txids) {
        if (!out.has(txid)) throw new CustodyError('UTXO_UNAVAILABLE', `coin ${txid}: not in the node's block at height ${height} (a reorg?); try again`);
      }
    }
    return out;
  }

  /** When the hot wallet runs low: one refill proposal at a time, and a failure retried at most hourly. */
  private async autoRefill(sats: bigint): Promise<void> {
    const open = [...this.records.values()].some((r) => r.kind === 'refill' && (r.state === 'proposed' || (r.txid !== null && this.payouts.list().some((p) => p.txid === r.txid && p.state !== 'confirmed'))));
    const coldSats = this.ledger.balances().cold.confirmedSats;
    const failed = this.autoRefillFailed;
    if (open || (failed !== null && failed.coldSats === coldSats && this.clock() - failed.at < 3_600_000)) return;
    try {
      await this.create({ kind: 'refill', amountSats: sats }, undefined, 'system');
      this.autoRefillFailed = null;
    } catch (err) {
      this.autoRefillFailed = { at: this.clock(), coldSats };
      this.opts.log?.(`sweeps: automatic refill of ${sats} sats not proposed: ${(err as Error).message}`);
    }
  }

  // --- importing ----------------------------------------------------------------------------------

  import(files: ReadonlyArray<{ readonly name: string; readonly content: Uint8Array }>, actor: string): Promise<SweepView> {
    return this.exclusive(async () => this.view(await this.importFiles(files, actor)));
  }

  private async importFiles(files: ReadonlyArray<{ readonly name: string; readonly content: Uint8Array }>, actor: string): Promise<SweepRecord> {
    if (files.length === 0) throw new CustodyError('INVALID_PARAMS', 'files: expected at least one signed PSBT', { field: 'files' });
    const decoded = files.map((f) => ({ name: f.name, psbt: decodePsbt(f.content, f.name) }));
    const bySweep = decoded.map((d) => {
      const txid = unsignedTx(d.psbt).getId();
      const r = [...this.records.values()].find((x) => x.unsignedTxid === txid);
      if (r === undefined) {
        const open = [...this.records.values()].filter((x) => x.state === 'proposed').map((x) => `${x.id} (${x.unsignedTxid.slice(0, 16)}…)`);
        throw new CustodyError('SWEEP_MISMATCH', `${d.name}: its transaction ${txid} is not one this daemon proposed${open.length > 0 ? ` (open proposals: ${open.join(', ')})` : ' (no proposal is open)'}; a changed amount, address or coin changes the transaction`, { file: d.name, unsignedTxid: txid });
      }
      return { ...d, record: r };
    });
    const record = (bySweep[0] as (typeof bySweep)[number]).record;
    const other = bySweep.find((b) => b.record.id !== record.id);
    if (other !== undefined) throw new CustodyError('SWEEP_MISMATCH', `${other.name} belongs to sweep ${other.record.id}, ${(bySweep[0] as (typeof bySweep)[number]).name} to ${record.id}: import one sweep's files at a time`, { file: other.name });
    if (record.state !== 'proposed') throw new CustodyError('SWEEP_STATE', `sweep ${record.id} is ${record.state === 'imported' ? `already imported (transaction ${record.txid})` : record.state}`, { id: record.id });
    const proposal = Psbt.fromBase64(record.psbt);
    const tx = unsignedTx(proposal);
    const cold = this.derivers.cold;
    const signers = record.inputs.map((i) => inputSigners(cold.descriptor, { out: cold.derive(i.chain, i.index), value: BigInt(i.valueSats) }));
    const signatures: VerifiedSignature[][] = signers.map(() => []);
    for (const f of bySweep) {
      if (f.psbt.inputCount !== signers.length) throw new CustodyError('SWEEP_MISMATCH', `${f.name}: ${f.psbt.inputCount} inputs, the proposal has ${signers.length}`, { file: f.name });
      signers.forEach((s, i) => {
        for (const sig of signaturesOf(f.psbt, i, tx, s, f.name)) {
          const list = signatures[i] as VerifiedSignature[];
          if (!list.some((x) => Buffer.compare(Buffer.from(x.pubkey), Buffer.from(sig.pubkey)) === 0)) list.push(sig);
        }
      });
    }
    const short = signers.map((s, i) => ({ i, have: (signatures[i] as VerifiedSignature[]).length, need: s.required, keys: s.keys })).filter((x) => x.have < x.need);
    if (short.length > 0) {
      const first = short[0] as (typeof short)[number];
      const signedBy = (signatures[first.i] as VerifiedSignature[]).map((s) => first.keys.find((k) => Buffer.compare(Buffer.from(k.pubkey), Buffer.from(s.pubkey)) === 0)).map((k) => (k === undefined ? '?' : keyName(k)));
      throw new CustodyError(
        'SWEEP_SIGNATURES',
        `sweep ${record.id}: ${short.length} of ${signers.length} inputs lack signatures; input ${first.i} has ${first.have} of ${first.need} (signed by ${signedBy.length > 0 ? signedBy.join(', ') : 'nobody'}); import the other cosigners' files with these`,
        { id: record.id, input: first.i, have: first.have, need: first.need },
      );
    }
    let final: Transaction;
    try {
      final = finalizeSweep(proposal, signatures, signers);
    } catch (err) {
      throw new CustodyError('SWEEP_SIGNATURES', `sweep ${record.id}: the signatures do not finalize: ${(err as Error).message}`, { id: record.id });
    }
    if (final.getId() !== record.unsignedTxid) throw new CustodyError('INTERNAL', `sweep ${record.id}: the final transaction ${final.getId()} is not the proposal ${record.unsignedTxid}`);
    const coins = record.inputs.map((i) => this.ledger.utxos.get(i.txid, i.vout));
    const gone = record.inputs.find((_, k) => {
      const c = coins[k];
      return c === undefined || c.spentBy !== null;
    });
    if (gone !== undefined) throw new CustodyError('SWEEP_STATE', `sweep ${record.id}: its coin ${gone.txid}:${gone.vout} was spent since the proposal; cancel it and propose again`, { id: record.id });
    const at = this.now();
    const imported: SweepRecord = { ...record, state: 'imported', txid: final.getId(), importedAt: at, importedBy: actor };
    const payout: PayoutRecord = {
      txid: final.getId(),
      kind: record.kind,
      hex: final.toHex(),
      withdrawals: [],
      inputs: record.inputs.map((i) => ({ txid: i.txid, vout: i.vout, chain: i.chain, index: i.index, value: i.valueSats })),
      change: null,
      feeSats: record.feeSats,
      vbytes: final.virtualSize(),
      feeRate: record.feeRate,
      state: 'signed',
      createdAt: at,
      broadcastHeight: null,
      height: null,
      parent: null,
      bumpedBy: null,
      failure: null,
    };
    let announced: CustodyEvent | undefined;
    // Appended when payouts commits the batch (same turn), never before: sequences land in order.
    const extra = (): BatchOp[] => {
      const auditOps = this.opts.audit === undefined ? [] : this.opts.audit.append(actor, 'sweep.import', { id: record.id, txid: payout.txid, files: files.map((f) => f.name) }).ops;
      const e = this.events.append('sweep.imported', { id: record.id, txid: payout.txid, files: files.length });
      announced = e.event;
      return [{ type: 'put', key: SWEEPS.record(record.id), value: JSON.stringify(imported) }, ...e.ops, ...auditOps];
    };
    await this.payouts.adopt(payout, coins as UtxoRecord[], extra);
    this.records.set(record.id, imported);
    if (announced !== undefined) this.events.announce([announced]);
    this.opts.log?.(`sweeps: ${record.id} imported from ${files.length} file(s); transaction ${payout.txid} sent`);
    return imported;
  }

  /** Gives up a proposal that was not imported: its coins are free again (signed files of it become useless). */
  cancel(id: string, actor: string): Promise<SweepView> {
    return this.exclusive(async () => {
      const r = this.record(id);
      if (r.state !== 'proposed') throw new CustodyError('SWEEP_STATE', `sweep ${id} is ${r.state}; only a proposal not yet imported can be cancelled`, { id });
      const released = this.ledger.utxos.release(`sweep:${id}`);
      const next: SweepRecord = { ...r, state: 'cancelled' };
      const auditOps = this.opts.audit === undefined ? [] : this.opts.audit.append(actor, 'sweep.cancel', { id }).ops;
      const e = this.events.append('sweep.cancelled', { id });
      const ops: BatchOp[] = [...released.ops, { type: 'put', key: SWEEPS.record(id), value: JSON.stringify(next) }, ...e.ops, ...auditOps];
      await this.store.commit(ops);
      for (const c of released.records) this.ledger.utxos.put(c);
      this.records.set(id, next);
      this.events.announce([e.event]);
      return this.view(next);
    });
  }
}

