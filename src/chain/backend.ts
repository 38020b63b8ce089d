/**
 * The one interface the daemon uses to reach the Bitcoin network: a node it trusts (its operator's own
 * bitcoind or a Core-compatible node). Only calls every such node serves with Core's parameters
 * (DESIGN §5); blocks come back raw and are parsed here, not by the node.
 */
export interface ChainInfo {
  readonly chain: string; // "main" | "test" | "signet" | "regtest"
  readonly blocks: number;
  readonly bestBlockHash: string;
}

export interface ChainBackend {
  getBlockchainInfo(): Promise<ChainInfo>;
  getBlockCount(): Promise<number>;
  getBestBlockHash(): Promise<string>;
  getBlockHash(height: number): Promise<string>;
  /** The serialized block (`getblock <hash> false`). */
  getBlockRaw(hash: string): Promise<Uint8Array>;
  getRawMempool(): Promise<string[]>;
  getRawTransaction(txid: string): Promise<Uint8Array>;
  /** Returns the txid the node reports. Some nodes return it even when the mempool rejects: confirm with getRawMempool. */
  sendRawTransaction(tx: Uint8Array): Promise<string>;
  /** Fee rate in sat/vB, or null when the node has no estimate. */
  estimateSmartFee(targetBlocks: number): Promise<number | null>;
}
