/**
 * The output scripts the chain follower looks for, and what each one is: a cold deposit address (cold
 * chain 0), cold change (cold chain 1, also where hot→cold sweeps go), a hot receive address (refills
 * from cold) or hot change. Deposit addresses are added the moment they are derived (pooled, not yet
 * issued), so a payment to an address is never missed because it was handed out after its block.
 */
import { ScriptIndex } from '../chain/script-index.js';
import type { ScriptWatch } from '../chain/block-walker.js';
import { Deriver, type Chain } from '../wallet/derive.js';
import { segwitV0ScriptOf } from '../wallet/scripts.js';

export type Wallet = 'cold' | 'hot';

export interface WatchedScript {
  readonly wallet: Wallet;
  readonly chain: Chain;
  readonly index: number;
}

/** tag = kind * 2^28 + index: 2^28 indexes per chain is far beyond any lookahead or issuance. */
const KIND_SHIFT = 2 ** 28;
const KINDS: readonly WatchedScript['wallet'][] = ['cold', 'cold', 'hot', 'hot'];

export function encodeTag(w: WatchedScript): number {
  return ((w.wallet === 'cold' ? 0 : 2) + w.chain) * KIND_SHIFT + w.index;
}

export function decodeTag(tag: number): WatchedScript {
  const kind = Math.floor(tag / KIND_SHIFT);
  return { wallet: KINDS[kind] as Wallet, chain: (kind % 2) as Chain, index: tag % KIND_SHIFT };
}

export class WatchSet implements ScriptWatch {
  private readonly index = new ScriptIndex();
  /** Highest index watched per kind (the lookahead moves it forward as addresses are used). */
  private readonly highest = [-1, -1, -1, -1];

  constructor(
    private readonly cold: Deriver,
    private readonly hot: Deriver | null,
  ) {}

  get size(): number {
    return this.index.size;
  }

  get bytes(): number {
    return this.index.bytes;
  }

  lookup(bytes: Uint8Array, start: number, end: number): number | undefined {
    return this.index.lookup(bytes, start, end);
  }

  add(script: Uint8Array, w: WatchedScript): void {
    this.index.add(script, encodeTag(w));
    const kind = (w.wallet === 'cold' ? 0 : 2) + w.chain;
    if (w.index > (this.highest[kind] as number)) this.highest[kind] = w.index;
  }

  /** An issued deposit address (segwit v0), from its stored record: decoding is far cheaper than deriving. */
  addAddress(address: string, w: WatchedScript): void {
    this.add(segwitV0ScriptOf(address), w);
  }

  /** Watches indexes up to `through` on a derived chain (change, hot), deriving what is missing. */
  extend(wallet: Wallet, chain: Chain, through: number): void {
    const deriver = wallet === 'cold' ? this.cold : this.hot;
    if (deriver === null) return;
    const kind = (wallet === 'cold' ? 0 : 2) + chain;
    for (let i = (this.highest[kind] as number) + 1; i <= through; i++) this.add(deriver.script(chain, i), { wallet, chain, index: i });
  }

  highestWatched(wallet: Wallet, chain: Chain): number {
    return this.highest[(wallet === 'cold' ? 0 : 2) + chain] as number;
  }
}
