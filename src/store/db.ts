/**
 * Opens the LevelDB data dir and checks it belongs to this daemon: schema version, network and cold
 * descriptor, recorded on first open. Writes that must be durable go through `commit` (sync: true; one
 * fsync'd batch costs about the same as one fsync'd put, so callers group-commit, DESIGN §11).
 */
import { mkdirSync, statSync, chmodSync } from 'node:fs';
import { Level } from 'level';
import { CustodyError } from '../errors.js';
import type { Network } from '../types.js';
import { META, SCHEMA_VERSION } from './layout.js';

export interface StoreIdentity {
  readonly network: Network;
  /** BIP380 checksum of the cold descriptor's canonical form. */
  readonly descriptorChecksum: string;
}

export type BatchOp = { readonly type: 'put'; readonly key: string; readonly value: string } | { readonly type: 'del'; readonly key: string };

export class Store {
  private queue: Array<{ ops: readonly BatchOp[]; resolve: () => void; reject: (e: unknown) => void }> = [];
  private writing = false;
  private broken: CustodyError | undefined;

  private constructor(
    readonly dir: string,
    private readonly db: Level<string, string>,
  ) {}

  static async open(dir: string, identity: StoreIdentity, now: () => Date = () => new Date()): Promise<Store> {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      if ((statSync(dir).mode & 0o077) !== 0) chmodSync(dir, 0o700);
    } catch (err) {
      throw new CustodyError('STORE_IO', `${dir}: cannot create the data dir (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { dir });
    }
    const db = new Level<string, string>(dir, { keyEncoding: 'utf8', valueEncoding: 'utf8' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
      if (/lock/i.test(cause)) throw new CustodyError('STORE_LOCKED', `${dir}: the data dir is in use by another process (is custodyd already running?)`, { dir });
      throw new CustodyError('STORE_IO', `${dir}: cannot open the data dir (${cause})`, { dir });
    }
    const store = new Store(dir, db);
    try {
      await store.checkIdentity(identity, now);
    } catch (err) {
      await db.close();
      throw err;
    }
    return store;
  }

  private async checkIdentity(identity: StoreIdentity, now: () => Date): Promise<void> {
    const [schema, network, descriptor] = await this.db.getMany([META.schema, META.network, META.descriptor]);
    if (schema === undefined) {
      await this.commit([
        { type: 'put', key: META.schema, value: String(SCHEMA_VERSION) },
        { type: 'put', key: META.network, value: identity.network },
        { type: 'put', key: META.descriptor, value: identity.descriptorChecksum },
        { type: 'put', key: META.created, value: now().toISOString() },
      ]);
      return;
    }
    if (Number(schema) > SCHEMA_VERSION) {
      throw new CustodyError('STORE_VERSION', `${this.dir}: data dir schema version ${schema} is newer than this daemon supports (${SCHEMA_VERSION}); upgrade custody`, {
        dir: this.dir,
      });
    }
    if (network !== identity.network) {
      throw new CustodyError('STORE_MISMATCH', `${this.dir}: the data dir was made for network ${network ?? '(none)'}, but the configuration says ${identity.network}`, {
        dir: this.dir,
        field: 'network',
      });
    }
    if (descriptor !== identity.descriptorChecksum) {
      throw new CustodyError(
        'STORE_MISMATCH',
        `${this.dir}: the data dir was made for the cold descriptor with checksum #${descriptor ?? '(none)'}, but the configured descriptor has #${identity.descriptorChecksum}`,
        { dir: this.dir, field: 'cold.descriptor' },
      );
    }
  }

  /** After a failed write nothing more can be committed (commit fails closed); a restart is needed. */
  get isBroken(): boolean {
    return this.broken !== undefined;
  }

  get(key: string): Promise<string | undefined> {
    return this.db.get(key);
  }

  getMany(keys: string[]): Promise<(string | undefined)[]> {
    return this.db.getMany(keys);
  }

  /** Values of the keys in [from, to), in key order. */
  async range(from: string, to: string, limit = -1, reverse = false): Promise<Array<[string, string]>> {
    return this.db.iterator({ gte: from, lt: to, limit, reverse }).all();
  }

  /**
   * One atomic, fsync'd batch. Commits are applied strictly in the order they are called: batches
   * queued while a write is in flight are merged into the next single write (group commit), which keeps
   * each caller's batch atomic and whole, shares one fsync among them, and means a later batch can never
   * land before an earlier one (audit and event sequences rely on that).
   */
  commit(ops: readonly BatchOp[]): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      this.queue.push({ ops, resolve, reject });
      if (!this.writing) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const group = this.queue;
        this.queue = [];
        try {
          await this.write(group.flatMap((g) => g.ops));
          for (const g of group) g.resolve();
        } catch (err) {
          // Fail closed: after a failed write nothing later may land, or sequences would have holes.
          this.broken = err as CustodyError;
          for (const g of [...group, ...this.queue]) g.reject(err);
          this.queue = [];
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /**
   * Built as a chained batch: for large groups about 4x faster than db.batch(array) in abstract-level 3,
   * whose per-operation checks dominate (measured: 7.5 ms vs 30 ms for 1,500 fsync'd puts).
   */
  private async write(ops: readonly BatchOp[]): Promise<void> {
    const batch = this.db.batch();
    try {
      for (const op of ops) {
        if (op.type === 'put') batch.put(op.key, op.value);
        else batch.del(op.key);
      }
      await batch.write({ sync: true });
    } catch (err) {
      if (batch.length > 0) await batch.close().catch(() => undefined);
      throw new CustodyError('STORE_IO', `${this.dir}: a write to the data dir failed (${(err as Error).message})`, { dir: this.dir });
    }
  }

  /** Resolves when every commit called so far has landed. */
  async settled(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
  }

  async close(): Promise<void> {
    await this.settled();
    await this.db.close();
  }
}
