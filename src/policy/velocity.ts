/**
 * Rolling withdrawal limits. A charge is recorded when a withdrawal is approved (its amount, never its
 * fee) and removed only when the withdrawal is cancelled or fails; fee bumps, re-broadcasts and reorgs
 * do not touch it, so the totals stay exact. Pure: charges and the clock come in.
 */
import { CustodyError } from '../errors.js';

export interface VelocityWindow {
  /** Shown in errors and status: "1h", "24h". */
  readonly name: string;
  readonly seconds: number;
  /** Most one client may withdraw within the window; undefined for no per-client limit. */
  readonly perClientSats?: bigint;
  /** Most all clients together may withdraw within the window. */
  readonly globalSats?: bigint;
}

export interface Charge {
  readonly id: string;
  readonly client: string;
  readonly amountSats: bigint;
  /** Milliseconds since the epoch: when the withdrawal was approved. */
  readonly at: number;
}

export interface WindowUse {
  readonly name: string;
  readonly seconds: number;
  readonly globalUsedSats: bigint;
  readonly globalLimitSats: bigint | null;
  readonly globalRemainingSats: bigint | null;
}

function used(charges: readonly Charge[], w: VelocityWindow, now: number, client?: string): bigint {
  const since = now - w.seconds * 1000;
  let sum = 0n;
  for (const c of charges) if (c.at > since && (client === undefined || c.client === client)) sum += c.amountSats;
  return sum;
}

/** Throws POLICY_VELOCITY naming the window, the scope and what is left, when `amount` does not fit. */
export function checkVelocity(charges: readonly Charge[], windows: readonly VelocityWindow[], client: string, amount: bigint, now: number): void {
  for (const w of windows) {
    if (w.perClientSats !== undefined) {
      const left = w.perClientSats - used(charges, w, now, client);
      if (amount > left) {
        throw new CustodyError('POLICY_VELOCITY', `amountSats: ${amount} exceeds the ${w.name} limit for client ${client}: ${left > 0n ? left : 0n} of ${w.perClientSats} sats left`, {
          field: 'amountSats',
          rule: `withdrawals.windows.${w.name}.perClientSats`,
          remainingSats: Number(left > 0n ? left : 0n),
        });
      }
    }
    if (w.globalSats !== undefined) {
      const left = w.globalSats - used(charges, w, now);
      if (amount > left) {
        throw new CustodyError('POLICY_VELOCITY', `amountSats: ${amount} exceeds the ${w.name} limit for all clients: ${left > 0n ? left : 0n} of ${w.globalSats} sats left`, {
          field: 'amountSats',
          rule: `withdrawals.windows.${w.name}.globalSats`,
          remainingSats: Number(left > 0n ? left : 0n),
        });
      }
    }
  }
}

export function windowUse(charges: readonly Charge[], windows: readonly VelocityWindow[], now: number): WindowUse[] {
  return windows.map((w) => {
    const g = used(charges, w, now);
    return {
      name: w.name,
      seconds: w.seconds,
      globalUsedSats: g,
      globalLimitSats: w.globalSats ?? null,
      globalRemainingSats: w.globalSats === undefined ? null : w.globalSats - g > 0n ? w.globalSats - g : 0n,
    };
  });
}

/**
 * The most all clients together could still get approved within the next `horizonSeconds`, by the global
 * limits (an upper bound, for the worst case in status). A window W at least as long as the horizon H:
 * everything approved in the horizon sits in the window ending at now+H, with the old charges still in
 * it then (those after now+H-W): limit minus those. A shorter window: any W-long stretch holds at most
 * its limit, and floor(H/W)+1 of them cover the horizon. Null: no global limit.
 */
export function remainingAllowance(charges: readonly Charge[], windows: readonly VelocityWindow[], now: number, horizonSeconds: number): bigint | null {
  let best: bigint | null = null;
  for (const w of windows) {
    if (w.globalSats === undefined) continue;
    let cap: bigint;
    if (w.seconds >= horizonSeconds) {
      const stillInside = now + horizonSeconds * 1000 - w.seconds * 1000;
      let old = 0n;
      for (const c of charges) if (c.at > stillInside && c.at <= now) old += c.amountSats;
      cap = w.globalSats - old > 0n ? w.globalSats - old : 0n;
    } else cap = w.globalSats * BigInt(Math.floor(horizonSeconds / w.seconds) + 1);
    if (best === null || cap < best) best = cap;
  }
  return best;
}
