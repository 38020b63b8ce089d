/**
 * The hot seed: 256 bits of entropy shown to humans as 24 BIP39 words, stretched to the 64-byte BIP32
 * seed (BIP39 §"From mnemonic to seed", empty BIP39 passphrase). The keystore stores the entropy; the
 * words are built as bytes by wallet/mnemonic.ts, so they can be wiped.
 */
import { wipe } from '../crypto/wipe.js';
import { mnemonicFromEntropy, mnemonicToSeed } from '../wallet/mnemonic.js';

/** BIP39 seed of the mnemonic for `entropy`. Wipe it when done. */
export function seedFromEntropy(entropy: Uint8Array): Buffer {
  const words = mnemonicFromEntropy(entropy);
  try {
    return mnemonicToSeed(words);
  } finally {
    wipe(words);
  }
}
