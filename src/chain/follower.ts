/**
 * Follows the node's best chain (DESIGN §5): polls the tip (and wakes early when told, e.g. by bitcoind's
 * ZMQ `hashblock`), walks new blocks in order as bytes, and hands each to a sink that applies it in one
 * batch. On a reorg it asks the sink to roll back, block by block from the top, to the fork point; then
 * it applies the new branch. Between blocks it reads the mempool for payments not yet mined.
 *
 * The sink (service/ledger.ts) owns every piece of state; the follower holds only progress figures, so
 * a restart resumes from the sink's tip and nothing is applied twice.
 */
import { CustodyError, isCustodyError } from '../errors.js';
import type { ChainBackend } from './backend.js';
import { walkBlock, walkTransaction, type OutpointWatch, type ScriptWatch, type WalkedBlock, type WalkedTransaction } from './block-walker.js';

export interface BlockRef {
  readonly height: number;
  readonly hash: string;
}

export interface ChainSink {
  readonly scripts: ScriptWatch;
  readonly outpoints: OutpointWatch;
  /** The last block applied, or null before the first. */
  tip(): BlockRef | null;
  /** The hash applied at `height`, if any (rescans check they re-walk the same chain). */
  hashAt(height: number): Promise<string | undefined>;
  /** Applies one block on top of tip() in one batch; with `rescan`, merges into a block applied earlier. */
  applyBlock(height: number, block: WalkedBlock, opts: { rescan: boolean; nodeTip: number }): Promise<void>;
  /** Undoes the tip block in one batch. */
  rollbackTip(): Promise<void>;
  /**
   * Unconfirmed transactions: those newly in the mempool that touch us, and the full mempool (txids), so
   * the sink can let go of unconfirmed payments that left it. Called only while the node's tip is ours.
   */
  applyMempool(added: readonly WalkedTransaction[], mempool: ReadonlySet<string>): Promise<void>;
}

export interface FollowerOptions {
  /** First height to walk when the sink has no tip. */
  readonly birthdayHeight: number;
  readonly pollMs: number;
  /** Blocks fetched ahead of the one being applied (network latency hidden behind walking). */
  readonly prefetch?: number;
  /** Read the mempool for unconfirmed payments (default true). */
  readonly mempool?: boolean;
  readonly log?: (line: string) => void;
}

export interface RescanProgress {
  readonly from: number;
  readonly to: number;
  /** Last height re-walked. */
  readonly at: number;
  readonly startedAt: string;
  readonly blocksPerSecond: number;
  readonly etaSeconds: number | null;
  readonly finishedAt: string | null;
  readonly error: string | null;
}

export interface FollowerStatus {
  /** `error`: the node answers, but a call or a block failed (see lastError); retried at every poll. */
  readonly state: 'connected' | 'disconnected' | 'error' | 'starting';
  readonly height: number | null;
  readonly hash: string | null;
  readonly nodeHeight: number | null;
  readonly lastError: string | null;
  readonly lastSyncAt: string | null;
  readonly rescan: RescanProgress | null;
}

export class ChainFollower {
  /** Told after each reorganisation: how many blocks were rolled back, and the fork height. */
  onReorg: ((depth: number, forkHeight: number | null) => void) | undefined;
  private state: FollowerStatus['state'] = 'starting';
  private nodeHeight: number | null = null;
  private lastError: string | null = null;
  private lastSyncAt: number | null = null;
  private stopped = false;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private loop: Promise<void> | undefined;
  /** Every txid in the node's mempool at the last look (touching us or not), so each is fetched once. */
  private mempoolKnown = new Set<string>();
  private rescanRequest: { from: number } | undefined;
  private rescan: RescanProgress | null = null;
  /** Waiters for a pass that starts after they asked (one in flight may predate their block). */
  private readonly idle: Array<{ after: number; resolve: () => void }> = [];
  private passes = 0;
  private readonly prefetch: number;

  constructor(
    private readonly backend: ChainBackend,
    private readonly sink: ChainSink,
    private readonly opts: FollowerOptions,
  ) {
    this.prefetch = Math.max(1, opts.prefetch ?? 8);
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Look at the node now instead of at the next poll (a `hashblock` notification, a test). */
  wake(): void {
    this.woken = true;
    this.wakeUp?.();
  }

  /** Resolves after the next complete pass that found the sink at the node's tip (tests, rescans). */
  whenSynced(): Promise<void> {
    const after = this.passes;
    this.wake();
    return new Promise((resolve) => this.idle.push({ after, resolve }));
  }

  status(): FollowerStatus {
    const tip = this.sink.tip();
    return {
      state: this.state,
      height: tip?.height ?? null,
      hash: tip?.hash ?? null,
      nodeHeight: this.nodeHeight,
      lastError: this.lastError,
      lastSyncAt: this.lastSyncAt === null ? null : new Date(this.lastSyncAt).toISOString(),
      rescan: this.rescan,
    };
  }

  /**
   * Re-walks [from, tip] with the current watch set (addresses added after their blocks were walked, a
   * birthday set too late) and merges what it finds. Runs inside the follow loop; returns once queued.
   */
  requestRescan(from: number): { from: number; to: number } {
    const tip = this.sink.tip();
    if (tip === null) throw new CustodyError('RESCAN_RANGE', 'from: the daemon has not applied any block yet; nothing to rescan', { field: 'from' });
    if (!Number.isSafeInteger(from) || from < 0 || from > tip.height) {
      throw new CustodyError('RESCAN_RANGE', `from: expected a height from 0 to the daemon's tip ${tip.height}, got ${from}`, { field: 'from', tip: tip.height });
    }
    if (this.rescan !== null && this.rescan.finishedAt === null) {
      throw new CustodyError('RESCAN_RANGE', `a rescan from ${this.rescan.from} is already running (at ${this.rescan.at})`, { field: 'from' });
    }
    this.rescan = { from, to: tip.height, at: from - 1, startedAt: new Date().toISOString(), blocksPerSecond: 0, etaSeconds: null, finishedAt: null, error: null };
    this.rescanRequest = { from };
    this.wake();
    return { from, to: tip.height };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.loop;
    for (const w of this.idle.splice(0)) w.resolve();
  }

  private release(pass: number): void {
    for (let i = this.idle.length - 1; i >= 0; i--) {
      const w = this.idle[i] as { after: number; resolve: () => void };
      if (pass > w.after) {
        this.idle.splice(i, 1);
        w.resolve();
      }
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.rescanRequest !== undefined) await this.runRescan(this.rescanRequest.from);
        const pass = ++this.passes;
        const atTip = await this.syncOnce();
        if (atTip) this.release(pass);
        if (this.state !== 'connected') this.opts.log?.(`chain: connected to the node at height ${this.nodeHeight}`);
        this.state = 'connected';
        this.lastError = null;
        this.lastSyncAt = Date.now();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (this.state !== 'disconnected' || this.lastError !== message) this.opts.log?.(`chain: ${message}`);
        // A node that cannot be reached, refuses us, or errs: keep serving, retry at the next poll.
        this.state = isCustodyError(err, 'CHAIN_UNAVAILABLE') || isCustodyError(err, 'CHAIN_AUTH') ? 'disconnected' : 'error';
        this.lastError = message;
      }
      if (this.stopped) break;
      if (this.woken) {
        this.woken = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.opts.pollMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
      this.woken = false;
    }
  }

  /** One pass: roll back what the node no longer has, apply what is new, then the mempool. True when at the tip. */
  private async syncOnce(): Promise<boolean> {
    const nodeHeight = await this.backend.getBlockCount();
    this.nodeHeight = nodeHeight;
    await this.rollBackToFork(nodeHeight);
    let next = (this.sink.tip()?.height ?? this.opts.birthdayHeight - 1) + 1;
    while (next <= nodeHeight && !this.stopped && this.rescanRequest === undefined) {
      const count = Math.min(this.prefetch, nodeHeight - next + 1);
      const raws = this.fetchRange(next, count);
      for (let i = 0; i < count; i++) {
        const raw = await (raws[i] as Promise<Uint8Array>);
        const height = next + i;
        const block = walkBlock(raw, this.sink.scripts, this.sink.outpoints);
        const tip = this.sink.tip();
        if (tip !== null && block.prevHash !== tip.hash) {
          // The node reorganised while we were walking: start the pass again from the fork point.
          await Promise.allSettled(raws);
          return false;
        }
        await this.sink.applyBlock(height, block, { rescan: false, nodeTip: nodeHeight });
        this.mempoolKnown.clear(); // a new block: its transactions left the mempool, others may come back
      }
      next += count;
    }
    if (this.stopped || this.rescanRequest !== undefined) return false;
    if (this.opts.mempool !== false) return this.readMempool();
    return true;
  }

  private fetchRange(from: number, count: number): Promise<Uint8Array>[] {
    const out: Promise<Uint8Array>[] = [];
    for (let h = from; h < from + count; h++) out.push(this.backend.getBlockHash(h).then((hash) => this.backend.getBlockRaw(hash)));
    // Failures surface when awaited, in order; the rest must not become unhandled rejections.
    for (const p of out) p.catch(() => undefined);
    return out;
  }

  private async rollBackToFork(nodeHeight: number): Promise<void> {
    let rolled = 0;
    for (let tip = this.sink.tip(); tip !== null; tip = this.sink.tip()) {
      if (tip.height <= nodeHeight && (await this.backend.getBlockHash(tip.height)) === tip.hash) break;
      await this.sink.rollbackTip();
      rolled++;
    }
    if (rolled > 0) {
      this.mempoolKnown.clear();
      this.opts.log?.(`chain: reorganisation: rolled back ${rolled} block(s) to height ${this.sink.tip()?.height ?? 'none'}`);
      this.onReorg?.(rolled, this.sink.tip()?.height ?? null);
    }
  }

  /** Reads the mempool only between blocks: the tip must be ours before and after, or the picture is torn. */
  private async readMempool(): Promise<boolean> {
    const tip = this.sink.tip();
    const best = await this.backend.getBestBlockHash();
    // Before the birthday block the sink has no tip; the node's tip must still hold still while we look.
    if (tip !== null && best !== tip.hash) return false;
    const txids = await this.backend.getRawMempool();
    const mempool = new Set(txids);
    const fresh: Uint8Array[] = [];
    for (const txid of txids) {
      if (this.mempoolKnown.has(txid)) continue;
      try {
        fresh.push(await this.backend.getRawTransaction(txid));
      } catch (err) {
        if (isCustodyError(err, 'CHAIN_RPC')) continue; // mined or evicted since the list was taken
        throw err;
      }
    }
    const added = walkMempool(fresh, this.sink.scripts, this.sink.outpoints);
    if ((await this.backend.getBestBlockHash()) !== best) return false;
    await this.sink.applyMempool(added, mempool);
    this.mempoolKnown = mempool;
    return true;
  }

  private async runRescan(from: number): Promise<void> {
    const request = this.rescanRequest;
    this.rescanRequest = undefined;
    const progress = this.rescan;
    if (request === undefined || progress === null) return;
    const started = performance.now();
    const to = progress.to;
    let at = from - 1;
    const update = (extra: Partial<RescanProgress> = {}): void => {
      const seconds = (performance.now() - started) / 1000;
      const done = at - from + 1;
      const rate = seconds > 0 ? done / seconds : 0;
      this.rescan = { ...progress, at, blocksPerSecond: Math.round(rate * 10) / 10, etaSeconds: rate > 0 ? Math.ceil((to - at) / rate) : null, ...extra };
    };
    try {
      for (let next = from; next <= to && !this.stopped; ) {
        const count = Math.min(this.prefetch, to - next + 1);
        const raws = this.fetchRange(next, count);
        for (let i = 0; i < count; i++) {
          const height = next + i;
          const raw = await (raws[i] as Promise<Uint8Array>);
          const block = walkBlock(raw, this.sink.scripts, this.sink.outpoints);
          const ours = await this.sink.hashAt(height);
          if (ours !== undefined && ours !== block.hash) {
            // The node moved to another branch mid-rescan: the normal pass rolls back first; rescan stops.
            throw new CustodyError('RESCAN_RANGE', `the node's block at ${height} is not the one the daemon applied (a reorganisation); run the rescan again`);
          }
          const tip = this.sink.tip();
          if (tip === null || height > tip.height) break;
          await this.sink.applyBlock(height, block, { rescan: true, nodeTip: tip.height });
          at = height;
          update();
        }
        next += count;
      }
      update({ finishedAt: new Date().toISOString(), etaSeconds: 0 });
      this.opts.log?.(`chain: rescan ${from}..${to} done`);
    } catch (err) {
      update({ finishedAt: new Date().toISOString(), error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  }
}

/**
 * Walks new mempool transactions. One may spend another's output that pays us (a chain of unconfirmed
 * transactions, in no particular order), which the sink cannot know yet: a second walk, with the first
 * walk's outputs added to the tracked outpoints, finds those spends.
 */
function walkMempool(raws: readonly Uint8Array[], scripts: ScriptWatch, outpoints: OutpointWatch): WalkedTransaction[] {
  const first = raws.map((raw) => walkTransaction(raw, scripts, outpoints));
  const ours = new Set(first.flatMap((w) => w.outputs.map((o) => `${o.txid}:${o.vout}`)));
  const walked =
    ours.size === 0
      ? first
      : raws.map((raw) =>
          walkTransaction(raw, scripts, {
            has: (bytes, at, vout) => outpoints.has(bytes, at, vout) || ours.has(`${Buffer.from(bytes.subarray(at, at + 32)).reverse().toString('hex')}:${vout}`),
          }),
        );
  return walked.filter((w) => w.outputs.length > 0 || w.spends.length > 0);
}
