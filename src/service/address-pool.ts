/**
 * Addresses derived ahead of demand for one chain, handed out strictly in index order. Worker threads
 * refill the pool in the background (the second core), so issuing an address costs a queue pop and a
 * durable write instead of ~0.4 ms of elliptic-curve work on the request path (DESIGN §11).
 * With `workers: 0` (tests, or when a worker fails) derivation runs inline on the main thread.
 */
import { Worker } from 'node:worker_threads';
import { CustodyError } from '../errors.js';
import type { Network } from '../types.js';
import type { ColdDescriptor } from '../wallet/descriptor.js';
import { Deriver, MAX_INDEX, type Chain } from '../wallet/derive.js';
import { deriveRange, type DeriveReply } from './derive-worker.js';

export interface PooledAddress {
  readonly index: number;
  readonly address: string;
  readonly script: Uint8Array;
}

export interface PoolOptions {
  /** Addresses to keep derived ahead. */
  readonly size: number;
  /** Addresses per worker request. */
  readonly batch: number;
  /** Worker threads; 0 derives inline. */
  readonly workers: number;
}

export const DEFAULT_POOL: PoolOptions = { size: 4096, batch: 256, workers: 1 };

/**
 * Nice value of the derivation threads: refilling is background work, so when the request path's threads
 * (main, ZeroMQ I/O, LevelDB) want a core a derivation thread holds, they get it. (This does not stop a
 * busy worker from slowing fsync on a shared virtual disk; refill() keeps the refill itself gentle.)
 */
export const WORKER_NICE = 10;

interface Waiter {
  readonly n: number;
  readonly resolve: () => void;
}

export class AddressPool {
  private readonly queue: PooledAddress[] = [];
  private head = 0; // queue[head] is the next index to hand out
  /** Next index not yet requested from any deriver. */
  private frontier: number;
  /** Replies that arrived out of order, by their first index. */
  private readonly early = new Map<number, DeriveReply>();
  /** First index of the contiguous run the queue still waits for. */
  private expected: number;
  private inFlight = 0;
  /** Topping up to `size` (started below half, goes on until full). */
  private refilling = false;
  private readonly workers: Worker[] = [];
  private nextWorker = 0;
  private readonly waiters: Waiter[] = [];
  private readonly deriver: Deriver;
  private closed = false;
  private failure: Error | undefined;
  private derivedListener: ((addresses: readonly PooledAddress[]) => void) | undefined;

  constructor(
    private readonly descriptor: ColdDescriptor,
    private readonly network: Network,
    private readonly chain: Chain,
    startIndex: number,
    private readonly opts: PoolOptions = DEFAULT_POOL,
  ) {
    this.deriver = new Deriver(descriptor, network);
    this.frontier = startIndex;
    this.expected = startIndex;
    for (let i = 0; i < opts.workers; i++) this.workers.push(this.spawn());
    this.refill();
  }

  private spawn(): Worker {
    const w = new Worker(new URL('./derive-worker.js', import.meta.url), {
      workerData: { descriptor: this.descriptor, network: this.network, nice: WORKER_NICE },
    });
    w.on('message', (reply: DeriveReply) => this.accept(reply));
    w.on('error', (err) => this.workerFailed(w, err));

    return w;
  }

  /**
   * Tells `listener` about every address derived from now on, and at once about those waiting in the
   * pool: the chain follower watches an address from the moment it exists, not from when it is issued.
   */
  onDerived(listener: (addresses: readonly PooledAddress[]) => void): void {
    this.derivedListener = listener;
    listener(this.queue.slice(this.head));
  }

  /** Addresses ready now. */
  get available(): number {
    return this.queue.length - this.head;
  }

  /** The index the next take() will start at. */
  get nextIndex(): number {
    return this.queue[this.head]?.index ?? this.expected;
  }

  /** Resolves once `n` addresses are derived and waiting (startup, benchmarks). */
  async warm(n: number): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.available >= n) return;
    this.refill(n);
    await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
    if (this.failure) throw this.failure;
  }

  /** Takes exactly `n` addresses, waiting for derivation when the pool runs short. */
  async take(n: number): Promise<PooledAddress[]> {
    if (this.failure) throw this.failure;
    if (this.available < n) {
      this.refill(n);
      await new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
      if (this.failure) throw this.failure;
    }
    const out = this.queue.slice(this.head, this.head + n);
    this.head += n;
    if (this.head > 65_536) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    this.refill();
    return out;
  }

  /** Returns addresses taken but not issued (their write failed), so indexes stay contiguous. */
  putBack(entries: readonly PooledAddress[]): void {
    if (entries.length === 0) return;
    const first = entries[0] as PooledAddress;
    if (first.index + entries.length !== this.nextIndex) throw new Error('putBack out of order');
    this.queue.splice(this.head, 0, ...entries);
  }

  /**
   * Tops the pool up to `size`, but only once it has fallen below half: refilling in bursts keeps the
   * derivation workers off the CPU while a burst of issuance is being served from the pool. While at
   * least a quarter is ready and nobody waits, the refill runs one batch at a time (one worker): measured
   * on this 2-core VM, two workers deriving flat out for the seconds a 15,000-address refill takes raised
   * the disk's fdatasync p99 from ~7 to ~40 ms and stalled group commits for up to ~0.9 s, even at a low
   * thread priority (issuance at 1,000/s then had a p50 of 60–900 ms for seconds). Below a quarter, or
   * when a caller waits, every worker takes part.
   */
  private refill(extra = 0): void {
    if (this.closed) return;
    const want = Math.max(this.opts.size, extra);
    if (extra === 0 && !this.refilling && this.available + this.inFlight >= this.opts.size / 2) return;
    this.refilling = true;
    const urgent = extra > 0 || this.waiters.length > 0 || this.available < this.opts.size / 4;
    const maxInFlight = urgent ? Number.POSITIVE_INFINITY : 1;
    while (this.available + this.inFlight < want && this.inFlight < maxInFlight && this.frontier <= MAX_INDEX) {
      const count = Math.min(this.opts.batch, MAX_INDEX - this.frontier + 1);
      const req = { chain: this.chain, from: this.frontier, count };
      this.frontier += count;
      this.inFlight += count;
      const worker = this.workers.length > 0 ? this.workers[this.nextWorker++ % this.workers.length] : undefined;
      if (worker !== undefined) {
        worker.postMessage(req);
      } else {
        // Inline: derive on a later turn so a caller's burst is not one long blocking loop.
        setImmediate(() => {
          if (!this.closed) this.accept(deriveRange(this.deriver, req));
        });
      }
    }
    if (this.available + this.inFlight >= want) this.refilling = false;
    if (this.frontier > MAX_INDEX && this.available + this.inFlight < extra) {
      this.fail(new CustodyError('INDEX_EXHAUSTED', `chain ${this.chain}: all ${MAX_INDEX + 1} unhardened indexes are used`, { chain: this.chain }));
    }
  }

  private accept(reply: DeriveReply): void {
    if (this.closed) return;
    if (reply.error !== undefined) {
      this.fail(new CustodyError('INTERNAL', `address derivation failed at index ${reply.from}: ${reply.error}`));
      return;
    }
    this.early.set(reply.from, reply);
    for (let r = this.early.get(this.expected); r !== undefined; r = this.early.get(this.expected)) {
      this.early.delete(r.from);
      const fresh: PooledAddress[] = [];
      for (let i = 0; i < r.addresses.length; i++) {
        fresh.push({
          index: r.from + i,
          address: r.addresses[i] as string,
          script: r.scripts.subarray(i * r.scriptLength, (i + 1) * r.scriptLength),
        });
      }
      this.queue.push(...fresh);
      this.derivedListener?.(fresh);
      this.inFlight -= r.addresses.length;
      this.expected += r.addresses.length;
    }
    while (this.waiters.length > 0 && (this.waiters[0] as Waiter).n <= this.available) (this.waiters.shift() as Waiter).resolve();
    this.refill();
  }

  private workerFailed(worker: Worker, err: Error): void {
    // A dead worker loses its in-flight range: fall back to inline derivation from the first missing index.
    const i = this.workers.indexOf(worker);
    if (i >= 0) this.workers.splice(i, 1);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
    this.early.clear();
    this.inFlight = 0;
    this.frontier = this.expected;
    process.emitWarning(`address pool worker failed (${err.message}); deriving on the main thread`);
    this.refill();
  }

  private fail(err: Error): void {
    this.failure = err;
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
    this.fail(new CustodyError('INTERNAL', 'the address pool is closed'));
  }
}
