/**
 * Worker thread that derives addresses ahead of demand (DESIGN §9: derivation is the cost to keep off
 * the request path). It holds only the public descriptor; it is told a chain and an index range and
 * answers with addresses and output scripts.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import type { ColdDescriptor } from '../wallet/descriptor.js';
import { Deriver, type Chain } from '../wallet/derive.js';
import type { Network } from '../types.js';

export interface DeriveRequest {
  readonly chain: Chain;
  readonly from: number;
  readonly count: number;
}

export interface DeriveReply {
  readonly from: number;
  readonly addresses: string[];
  /** Scripts back to back, `scriptLength` bytes each (22 for P2WPKH, 34 for P2WSH). */
  readonly scripts: Uint8Array;
  readonly scriptLength: number;
  readonly error?: string;
}

export function deriveRange(deriver: Deriver, req: DeriveRequest): DeriveReply {
  const addresses = new Array<string>(req.count);
  const scriptLength = deriver.descriptor.kind === 'wpkh' ? 22 : 34;
  const scripts = new Uint8Array(scriptLength * req.count);
  for (let i = 0; i < req.count; i++) {
    const out = deriver.output(req.chain, req.from + i);
    addresses[i] = out.address;
    scripts.set(out.script, i * scriptLength);
  }
  return { from: req.from, addresses, scripts, scriptLength };
}

/**
 * Lowers this thread's scheduling priority (its nice value; Linux lets setpriority(2) name a thread by its
 * id), so refills run on CPU the request path leaves idle instead of delaying its replies. Best effort:
 * elsewhere, or where /proc is not mounted, the worker keeps the normal priority. Never the main thread.
 */
export function lowerThreadPriority(nice: number): boolean {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isSafeInteger(tid) || tid <= 0 || tid === process.pid) return false;
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}

if (parentPort !== null && workerData !== null && typeof workerData === 'object' && 'descriptor' in workerData) {
  const port = parentPort;
  const data = workerData as { descriptor: ColdDescriptor; network: Network; nice?: number };
  if (data.nice !== undefined && data.nice > 0) lowerThreadPriority(data.nice);
  const deriver = new Deriver(data.descriptor, data.network);
  port.on('message', (req: DeriveRequest) => {
    try {
      const reply = deriveRange(deriver, req);
      port.postMessage(reply, [reply.scripts.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ from: req.from, addresses: [], scripts: new Uint8Array(0), scriptLength: 0, error: (err as Error).message } satisfies DeriveReply);
    }
  });
}
