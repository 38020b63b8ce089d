/**
 * bcoin's script interpreter as a third, independent verifier of transactions signed by bitcoinjs (our
 * code) or @scure/btc-signer: does every input spend its previous output? bcoin is CommonJS without types;
 * the few calls used are typed here.
 */
import { createRequire } from 'node:module';

interface Bcoin {
  TX: { fromRaw(raw: Buffer): { verify(view: unknown): boolean } };
  CoinView: new () => { addOutput(prevout: unknown, output: unknown): unknown };
  Outpoint: new (hash: string, index: number) => unknown;
  Output: { fromScript(script: unknown, value: number): unknown };
  Script: { fromRaw(raw: Buffer): unknown };
}
const bcoin = createRequire(import.meta.url)('bcoin') as Bcoin;

/** A previous output an input spends: txid in display hex, its script and value. */
export interface Prevout {
  readonly txid: string;
  readonly vout: number;
  readonly script: Uint8Array;
  readonly value: bigint;
}

/** bcoin's verdict on every input of `tx`, spending `prevouts`. */
export function bcoinVerifies(tx: { toBuffer(): Uint8Array }, prevouts: readonly Prevout[]): boolean {
  const view = new bcoin.CoinView();
  for (const p of prevouts) {
    // bcoin names outpoints by the txid's internal byte order.
    view.addOutput(new bcoin.Outpoint(Buffer.from(p.txid, 'hex').reverse().toString('hex'), p.vout), bcoin.Output.fromScript(bcoin.Script.fromRaw(Buffer.from(p.script)), Number(p.value)));
  }
  return bcoin.TX.fromRaw(Buffer.from(tx.toBuffer())).verify(view);
}
