/**
 * Known-answer tests run at every daemon start, before any key is touched (FIPS 140-style power-on
 * self-tests): if the platform's crypto is broken or substituted, the daemon refuses to start.
 */
import { createHash } from 'node:crypto';
import * as ecc from 'tiny-secp256k1';
import { CustodyError } from '../errors.js';
import { aeadOpen, aeadSeal, deriveKey } from './envelope.js';
import { combineShares, splitSecret } from './shamir.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

function expect(name: string, got: string, want: string): void {
  if (got !== want) throw new CustodyError('INTERNAL', `crypto self-test failed: ${name}; refusing to start`);
}

export async function selfTest(): Promise<void> {
  // FIPS 180-2 appendix B.1: SHA-256("abc").
  expect('SHA-256', createHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 14 (AES-256, zero key and IV).
  const sealed = aeadSeal(Buffer.alloc(32), Buffer.alloc(12), Buffer.alloc(16), Buffer.alloc(0));
  expect('AES-256-GCM', hex(sealed), 'cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919');
  expect('AES-256-GCM open', hex(aeadOpen(Buffer.alloc(32), Buffer.alloc(12), sealed, Buffer.alloc(0)) ?? Buffer.from('x')), '00'.repeat(16));
  // RFC 7914 §12, second vector, first 32 bytes.
  expect('scrypt', hex(await deriveKey(Buffer.from('password'), Buffer.from('NaCl'), { N: 1024, r: 8, p: 16 })), 'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162');
  // secp256k1: 1·G is the generator (SEC 2 §2.4.1).
  expect('secp256k1', hex(ecc.pointFromScalar(Buffer.from('00'.repeat(31) + '01', 'hex'), true) ?? new Uint8Array()), '0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798');
  const secret = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
  const shares = await splitSecret(secret, 3, 2);
  expect('Shamir 2-of-3', hex(await combineShares([shares[2] as Uint8Array, shares[0] as Uint8Array])), hex(secret));
}
