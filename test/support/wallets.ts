/** Public test descriptors (the BIP84 "abandon … about" key: published test data, never real funds). */
import { parseDescriptor, type ColdDescriptor } from '../../src/wallet/descriptor.js';

export const REGTEST_WPKH =
  'wpkh([73c5da0a/84h/1h/0h]tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M/<0;1>/*)#lxek0ef2';
export const MAINNET_WPKH =
  'wpkh([73c5da0a/84h/0h/0h]xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V/<0;1>/*)#qf45pmyh';

export function regtestDescriptor(): ColdDescriptor {
  return parseDescriptor(REGTEST_WPKH, { network: 'regtest' });
}
