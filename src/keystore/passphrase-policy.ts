/**
 * What a custodian passphrase must be: at least 12 characters and a zxcvbn score of 3 or more
 * ("safely unguessable": ~10^8 guesses or more to crack, before scrypt multiplies the cost).
 * The estimate needs a JavaScript string, which cannot be wiped; it lives only for this check.
 */
import type { ZxcvbnFactory } from '@zxcvbn-ts/core';
import { CustodyError } from '../errors.js';

export const MIN_PASSPHRASE_CHARS = 12;
export const MIN_ZXCVBN_SCORE = 3;
export const MAX_PASSPHRASE_BYTES = 1024;

let estimator: Promise<ZxcvbnFactory> | undefined;
function zxcvbn(): Promise<ZxcvbnFactory> {
  // Loading the dictionaries costs ~0.4 s: only the commands that set a passphrase pay for it.
  estimator ??= (async () => {
    const [{ ZxcvbnFactory }, common, en] = await Promise.all([
      import('@zxcvbn-ts/core'),
      import('@zxcvbn-ts/language-common'),
      import('@zxcvbn-ts/language-en'),
    ]);
    return new ZxcvbnFactory({
      dictionary: { ...common.dictionary, ...en.dictionary },
      graphs: common.adjacencyGraphs,
      translations: en.translations,
    });
  })();
  return estimator;
}

/** Starts loading the estimator in the background, so the first check does not stall the prompt. */
export function preloadStrengthEstimator(): void {
  zxcvbn().catch(() => undefined);
}

/**
 * Passphrases are compared as NFKC-normalised UTF-8, so "é" typed as one code point or as e + accent
 * unlocks alike on any keyboard. Pure-ASCII input (the common case) is returned as a copy without ever
 * becoming a string.
 */
export function normalizePassphrase(passphrase: Uint8Array): Buffer {
  if (passphrase.every((b) => b < 0x80)) return Buffer.from(passphrase);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(passphrase);
  return Buffer.from(text.normalize('NFKC'), 'utf8');
}

/** Throws WEAK_PASSPHRASE with the reason, for `custodian`, when the passphrase breaks the rules. */
export async function checkPassphraseStrength(passphrase: Uint8Array, custodian: string, context: readonly string[] = []): Promise<void> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(passphrase);
  } catch {
    throw new CustodyError('WEAK_PASSPHRASE', `custodian "${custodian}": the passphrase is not valid UTF-8 text`, { custodian, rule: 'utf8' });
  }
  if (passphrase.length > MAX_PASSPHRASE_BYTES) {
    throw new CustodyError('WEAK_PASSPHRASE', `custodian "${custodian}": the passphrase is longer than ${MAX_PASSPHRASE_BYTES} bytes`, {
      custodian,
      rule: 'max-length',
    });
  }
  const chars = [...text.normalize('NFKC')].length;
  if (chars < MIN_PASSPHRASE_CHARS) {
    throw new CustodyError(
      'WEAK_PASSPHRASE',
      `custodian "${custodian}": the passphrase has ${chars} characters; at least ${MIN_PASSPHRASE_CHARS} are required`,
      { custodian, rule: 'min-length', min: MIN_PASSPHRASE_CHARS },
    );
  }
  const result = (await zxcvbn()).check(text, [custodian, 'custody', 'keystore', ...context]);
  if (result.score < MIN_ZXCVBN_SCORE) {
    const why = [result.feedback.warning, ...result.feedback.suggestions].filter((s): s is string => typeof s === 'string' && s !== '');
    throw new CustodyError(
      'WEAK_PASSPHRASE',
      `custodian "${custodian}": the passphrase is too easy to guess (strength ${result.score}/4, need ${MIN_ZXCVBN_SCORE})${why.length ? `: ${why.join(' ')}` : ''}`,
      { custodian, rule: 'strength', score: result.score, min: MIN_ZXCVBN_SCORE },
    );
  }
}
