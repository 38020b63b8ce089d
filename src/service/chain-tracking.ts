/**
 * Deposit and coin tracking, put together: the watched scripts (issued and pooled deposit addresses,
 * cold change, hot chains), the ledger that applies blocks, and the follower that feeds it from the node.
 * Composed once by main.ts; the RPC methods read status, balances and deposits through it.
 */
import type { ChainBackend } from '../chain/backend.js';
import { ChainFollower, type FollowerStatus } from '../chain/follower.js';
import type { Network } from '../types.js';
import type { Store } from '../store/db.js';
import type { ColdDescriptor } from '../wallet/descriptor.js';
import { parseDescriptor } from '../wallet/descriptor.js';
import { Deriver } from '../wallet/derive.js';
import type { DepositAddresses } from './deposits.js';
import type { EventLog } from './events.js';
import { Ledger } from './ledger.js';
import type { Balances } from './utxo-set.js';
import { WatchSet } from './watch.js';

export interface ChainTrackingOptions {
  readonly network: Network;
  readonly birthdayHeight: number;
  readonly confirmations: number;
  readonly pollMs: number;
  readonly lookahead: number;
  readonly mempool: boolean;
  readonly log?: (line: string) => void;
}

/** The hot account as the keystore records it (public): fingerprint, path below the master, xpub. */
export interface HotAccountKey {
  readonly fingerprint: string;
  readonly path: string;
  readonly xpub: string;
}

export interface ChainStatus extends FollowerStatus {
  readonly confirmations: number;
  readonly birthdayHeight: number;
  readonly watchedScripts: number;
}

export class ChainTracking {
  private constructor(
    readonly ledger: Ledger,
    readonly follower: ChainFollower,
    readonly watch: WatchSet,
    readonly backend: ChainBackend,
    readonly derivers: { readonly cold: Deriver; readonly hot: Deriver },
    private readonly opts: ChainTrackingOptions,
  ) {}

  static async open(
    store: Store,
    events: EventLog,
    deposits: DepositAddresses,
    cold: ColdDescriptor,
    hot: HotAccountKey,
    backend: ChainBackend,
    opts: ChainTrackingOptions,
  ): Promise<ChainTracking> {
    const hotDescriptor = parseDescriptor(`wpkh([${hot.fingerprint}/${hot.path}]${hot.xpub}/<0;1>/*)`, { network: opts.network });
    const derivers = { cold: new Deriver(cold, opts.network), hot: new Deriver(hotDescriptor, opts.network) };
    const watch = new WatchSet(derivers.cold, derivers.hot);
    // Every issued address, then the next `lookahead` (a restart re-derives the pool; these cover the
    // gap until it has), then whatever the pool derives from now on.
    for (let from = 0; ; ) {
      const page = await deposits.list({ fromIndex: from, limit: 10_000 });
      for (const r of page) watch.addAddress(r.address, { wallet: 'cold', chain: 0, index: r.index });
      if (page.length < 10_000) break;
      from = (page[page.length - 1]?.index ?? from) + 1;
    }
    watch.extend('cold', 0, deposits.gap().highestIssued + opts.lookahead);
    deposits.onDerived((list) => {
      for (const a of list) watch.add(a.script, { wallet: 'cold', chain: 0, index: a.index });
    });
    const ledger = await Ledger.open(store, events, deposits, watch, { network: opts.network, confirmations: opts.confirmations, lookahead: opts.lookahead });
    const follower = new ChainFollower(backend, ledger, {
      birthdayHeight: opts.birthdayHeight,
      pollMs: opts.pollMs,
      mempool: opts.mempool,
      ...(opts.log === undefined ? {} : { log: opts.log }),
    });
    return new ChainTracking(ledger, follower, watch, backend, derivers, opts);
  }

  start(): void {
    this.follower.start();
  }

  stop(): Promise<void> {
    return this.follower.stop();
  }

  status(): ChainStatus {
    return { ...this.follower.status(), confirmations: this.opts.confirmations, birthdayHeight: this.opts.birthdayHeight, watchedScripts: this.watch.size };
  }

  balances(): Balances {
    return this.ledger.balances();
  }
}
