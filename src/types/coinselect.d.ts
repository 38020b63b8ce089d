// coinselect 3 ships no types; this is the part we use (values in satoshis, as JS numbers).
declare module 'coinselect' {
  interface Utxo {
    readonly value: number;
    readonly script?: { readonly length: number };
    readonly [key: string]: unknown;
  }
  interface Target {
    readonly value?: number;
    readonly script?: { readonly length: number };
    readonly [key: string]: unknown;
  }
  interface Result<U, T> {
    readonly inputs?: U[];
    readonly outputs?: T[];
    readonly fee: number;
  }
  export default function coinSelect<U extends Utxo, T extends Target>(utxos: readonly U[], targets: readonly T[], feeRate: number): Result<U, T>;
}
