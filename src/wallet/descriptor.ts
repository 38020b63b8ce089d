/**
 * The cold wallet's output descriptor (DESCRIPTOR §2): parsed, validated and written back in one canonical
 * form. Only what the daemon issues is accepted: `wpkh(KEY)` (BIP382) and `wsh(sortedmulti(M,KEY,…))`
 * (BIP382 + BIP383), every KEY an xpub/tpub with its origin `[fingerprint/path]` (BIP380 §Key Expressions)
 * and the derivation `/<0;1>/*` (BIP389 multipath: chain 0 receives, chain 1 is change), or the same
 * wallet as the pair of descriptors `…/0/*` and `…/1/*`. A hand-written parser: the grammar we accept is
 * tiny, and a general descriptor library would accept much we must refuse.
 */
import { CustodyError } from '../errors.js';
import type { Network } from '../types.js';
import { checksumMatches, descriptorChecksum, firstInvalidDescriptorChar, isChecksumCharset, withChecksum } from './checksum.js';
import { fingerprintHex } from './keys.js';
import { abbreviate, keyNetworkOf, looksLikePrivateExtendedKey, looksLikeWif, parseExtendedPublicKey, privateKeyError, type KeyNetwork } from './xpub.js';

export { descriptorChecksum, withChecksum };

export type ColdKind = 'wpkh' | 'wsh-sortedmulti';

export interface ColdKey {
  /** Fingerprint of the master key the origin path starts from: 8 lowercase hex. */
  readonly fingerprint: string;
  /** Origin path below that master key, hardened steps written `h`: `84h/0h/0h`. Empty for a master xpub. */
  readonly originPath: string;
  /** The account xpub (mainnet) or tpub (test networks), plain BIP32 version bytes. */
  readonly xpub: string;
}

export interface ColdDescriptor {
  readonly kind: ColdKind;
  /** Signatures required: 1 for wpkh, M for sortedmulti. */
  readonly threshold: number;
  /** In the order written; sortedmulti sorts the derived public keys, not this list (BIP383). */
  readonly keys: readonly ColdKey[];
  readonly network: Network;
  /** BIP380 checksum of `canonical`. */
  readonly checksum: string;
  /** The multipath form `…/<0;1>/*` with `#checksum`, what the daemon stores and compares. */
  readonly canonical: string;
  /** Things the operator should know but that do not make the descriptor wrong (e.g. SLIP-132 conversion). */
  readonly warnings: readonly string[];
}

export interface ParseDescriptorOptions {
  /** The network the daemon runs on; keys of the other kind (xpub vs tpub) are refused. */
  readonly network?: Network;
  /** Refuse a descriptor without `#checksum` (BIP380 allows either; the daemon's config may insist). */
  readonly requireChecksum?: boolean;
}

/** BIP383: at most 20 keys in a multisig inside wsh(). */
export const MAX_MULTISIG_KEYS = 20;

const UNSUPPORTED_SCRIPTS = new Set(['sh', 'pkh', 'pk', 'tr', 'combo', 'addr', 'raw', 'rawtr', 'multi', 'sortedmulti', 'multi_a', 'sortedmulti_a']);
const HARDENED_LIMIT = 0x80000000;

type ChainSuffix = 'multipath' | 0 | 1;

interface ParsedKey extends ColdKey {
  readonly net: KeyNetwork;
  readonly suffix: ChainSuffix;
  readonly convertedFrom?: { readonly name: string; readonly slip132: 'p2wpkh' | 'p2wsh' };
}

interface ParsedOne {
  readonly kind: ColdKind;
  readonly threshold: number;
  readonly keys: readonly ParsedKey[];
  readonly warnings: readonly string[];
}

/**
 * Parses the multipath form, or the pair form (an array of two, or two lines). Throws CustodyError with
 * DESCRIPTOR_SYNTAX, _CHECKSUM, _KEY, _UNSUPPORTED or _NETWORK; messages never repeat private keys.
 */
export function parseDescriptor(input: string | readonly string[], options: ParseDescriptorOptions = {}): ColdDescriptor {
  const texts = (typeof input === 'string' ? input.split(/\r?\n/) : [...input]).map((s) => s.trim()).filter((s) => s.length > 0);
  if (texts.length === 0) throw syntax('descriptor: empty; expected wpkh(…) or wsh(sortedmulti(…))');
  if (texts.length > 2) throw syntax(`descriptor: got ${texts.length} descriptors; expected one (with /<0;1>/*) or a receive/change pair`);

  const parsed = texts.map((text, i) => parseOne(text, texts.length === 1 ? 'descriptor' : `descriptor ${i + 1}`, options));
  const one = texts.length === 1 ? single(parsed[0] as ParsedOne) : pair(parsed[0] as ParsedOne, parsed[1] as ParsedOne);

  const nets = new Set(one.keys.map((k) => k.net));
  if (nets.size > 1) {
    const idx = one.keys.findIndex((k) => k.net !== one.keys[0]?.net);
    throw new CustodyError('DESCRIPTOR_NETWORK', `key ${idx + 1}: mixes mainnet (xpub) and test-network (tpub) keys in one descriptor`, { key: idx + 1 });
  }
  const keyNet = one.keys[0]?.net ?? 'mainnet';
  let network: Network;
  if (options.network !== undefined) {
    if (keyNetworkOf(options.network) !== keyNet) {
      throw new CustodyError(
        'DESCRIPTOR_NETWORK',
        `network: the descriptor's keys are ${keyNet === 'mainnet' ? 'xpub (mainnet)' : 'tpub (test networks)'} but the network is ${options.network}`,
        { network: options.network },
      );
    }
    network = options.network;
  } else {
    network = keyNet === 'mainnet' ? 'mainnet' : 'testnet';
  }

  const keys: ColdKey[] = one.keys.map((k) => ({ fingerprint: k.fingerprint, originPath: k.originPath, xpub: k.xpub }));
  const canonical = withChecksum(formatDescriptor(one.kind, one.threshold, keys));
  return {
    kind: one.kind,
    threshold: one.threshold,
    keys,
    network,
    checksum: canonical.slice(-8),
    canonical,
    warnings: [...one.warnings, ...conventionWarnings(one.kind, keys, network)],
  };
}

/** The canonical body (no checksum): `wpkh([fp/path]xpub/<0;1>/*)` or `wsh(sortedmulti(M,…))`. */
export function formatDescriptor(kind: ColdKind, threshold: number, keys: readonly ColdKey[], chain?: 0 | 1): string {
  const tail = chain === undefined ? '/<0;1>/*' : `/${chain}/*`;
  const expr = keys.map((k) => `[${k.fingerprint}${k.originPath === '' ? '' : `/${k.originPath}`}]${k.xpub}${tail}`);
  return kind === 'wpkh' ? `wpkh(${expr[0] ?? ''})` : `wsh(sortedmulti(${threshold},${expr.join(',')}))`;
}

/** The single-chain descriptor with checksum, for tools without BIP389 (e.g. importdescriptors before multipath). */
export function chainDescriptor(desc: ColdDescriptor, chain: 0 | 1): string {
  return withChecksum(formatDescriptor(desc.kind, desc.threshold, desc.keys, chain));
}

/** A key expression written as `[fp/path]xpub…` (for display and for the signer's exports). */
export function keyOrigin(key: ColdKey): string {
  return `[${key.fingerprint}${key.originPath === '' ? '' : `/${key.originPath}`}]${key.xpub}`;
}

function single(p: ParsedOne): ParsedOne {
  const bad = p.keys.findIndex((k) => k.suffix !== 'multipath');
  if (bad >= 0) {
    throw new CustodyError(
      'DESCRIPTOR_UNSUPPORTED',
      `key ${bad + 1}: /${p.keys[bad]?.suffix as number}/* covers only chain ${p.keys[bad]?.suffix as number}; give /<0;1>/* (BIP389) or both the /0/* and /1/* descriptors`,
      { key: bad + 1 },
    );
  }
  return p;
}

function pair(a: ParsedOne, b: ParsedOne): ParsedOne {
  const chainOf = (p: ParsedOne, label: string): 0 | 1 => {
    const first = p.keys[0]?.suffix;
    if (first === 'multipath' || p.keys.some((k) => k.suffix !== first)) {
      throw syntax(`${label}: in the pair form every key must end in the same /0/* or /1/*`);
    }
    return first as 0 | 1;
  };
  const ca = chainOf(a, 'descriptor 1');
  const cb = chainOf(b, 'descriptor 2');
  if (ca === cb) throw syntax(`descriptors 1 and 2 are both chain ${ca}; the pair must be one /0/* (receive) and one /1/* (change)`);
  const [recv, change] = ca === 0 ? [a, b] : [b, a];
  if (recv.kind !== change.kind) throw syntax('descriptors 1 and 2 use different scripts; the pair must differ only in /0/* vs /1/*');
  if (recv.threshold !== change.threshold) throw syntax('descriptors 1 and 2 have different thresholds; the pair must differ only in /0/* vs /1/*');
  if (recv.keys.length !== change.keys.length) throw syntax('descriptors 1 and 2 have different numbers of keys');
  recv.keys.forEach((k, i) => {
    const o = change.keys[i] as ParsedKey;
    if (k.fingerprint !== o.fingerprint || k.originPath !== o.originPath || k.xpub !== o.xpub) {
      throw syntax(`key ${i + 1} differs between the receive and change descriptors; the pair must differ only in /0/* vs /1/*`);
    }
  });
  return { ...recv, keys: recv.keys.map((k) => ({ ...k, suffix: 'multipath' as const })), warnings: dedupe([...recv.warnings, ...change.warnings]) };
}

function parseOne(text: string, label: string, options: ParseDescriptorOptions): ParsedOne {
  const hashes = text.split('#');
  if (hashes.length > 2) throw new CustodyError('DESCRIPTOR_CHECKSUM', `${label}: more than one "#"; expected SCRIPT#CHECKSUM (BIP380 §Checksum)`);
  const body = hashes[0] as string;
  const checksum = hashes[1];

  // Private material is reported before anything else, and never quoted (DESIGN §2: cold keys stay offline).
  for (const token of body.split(/[[\](),/<>;#]/)) {
    if (looksLikePrivateExtendedKey(token) || looksLikeWif(token)) throw privateKeyError(label);
  }
  const bad = firstInvalidDescriptorChar(body);
  if (bad >= 0) {
    throw syntax(`${label}: character ${bad + 1} (${JSON.stringify(body[bad])}) is outside the descriptor character set (BIP380 §Character Set)`);
  }
  if (checksum !== undefined) {
    if (checksum.length !== 8 || !isChecksumCharset(checksum)) {
      throw new CustodyError(
        'DESCRIPTOR_CHECKSUM',
        `${label}: checksum "#${abbreviate(checksum)}" must be 8 characters of the bech32 alphabet (BIP380 §Checksum), got ${checksum.length}`,
      );
    }
    // The expected value is not shown: printing it would invite "fixing" a mistyped descriptor by pasting it.
    if (!checksumMatches(body, checksum)) {
      throw new CustodyError('DESCRIPTOR_CHECKSUM', `${label}: checksum #${checksum} does not match the descriptor (BIP380 §Checksum); it was changed or mistyped`);
    }
  } else if (options.requireChecksum === true) {
    throw new CustodyError('DESCRIPTOR_CHECKSUM', `${label}: no #checksum; this configuration requires the BIP380 checksum`);
  }

  const top = call(body);
  if (top === undefined) throw syntax(`${label}: expected SCRIPT(…) such as wpkh(KEY) or wsh(sortedmulti(M,KEY,…))`);
  if (top.name === 'wpkh') {
    if (top.inner.includes(',')) throw syntax(`${label}: wpkh() takes exactly one key (BIP382)`);
    const key = parseKey(top.inner, 'key 1');
    return { kind: 'wpkh', threshold: 1, keys: [key], warnings: slipWarnings([key], 'wpkh') };
  }
  if (top.name === 'wsh') {
    const inner = call(top.inner);
    if (inner === undefined) {
      throw new CustodyError('DESCRIPTOR_UNSUPPORTED', `${label}: wsh() must contain sortedmulti(M,KEY,…); other witness scripts are not supported`);
    }
    if (inner.name === 'multi') {
      throw new CustodyError(
        'DESCRIPTOR_UNSUPPORTED',
        `${label}: wsh(multi(…)) puts keys in written order; this daemon requires sortedmulti() (BIP383, BIP67 key sorting) so no cosigner's key order can change the addresses`,
      );
    }
    if (inner.name !== 'sortedmulti') {
      throw new CustodyError('DESCRIPTOR_UNSUPPORTED', `${label}: wsh(${inner.name}(…)) is not supported; use wsh(sortedmulti(M,KEY,…))`, { script: inner.name });
    }
    return parseSortedMulti(inner.inner, label);
  }
  if (UNSUPPORTED_SCRIPTS.has(top.name)) {
    throw new CustodyError(
      'DESCRIPTOR_UNSUPPORTED',
      `${label}: ${top.name}() is not supported; this daemon issues native segwit only: wpkh(KEY) or wsh(sortedmulti(M,KEY,…))`,
      { script: top.name },
    );
  }
  throw syntax(`${label}: unknown script expression "${abbreviate(top.name)}()"`);
}

function parseSortedMulti(args: string, label: string): ParsedOne {
  const parts = args.split(',');
  const m = parts[0] ?? '';
  if (!/^[1-9]\d{0,2}$/.test(m)) throw syntax(`${label}: sortedmulti threshold must be a whole number from 1, got "${abbreviate(m)}" (BIP383)`);
  const threshold = Number(m);
  const keyTexts = parts.slice(1);
  if (keyTexts.length === 0) throw syntax(`${label}: sortedmulti() has no keys`);
  if (keyTexts.length > MAX_MULTISIG_KEYS) throw syntax(`${label}: sortedmulti() has ${keyTexts.length} keys; at most ${MAX_MULTISIG_KEYS} inside wsh() (BIP383)`);
  if (threshold > keyTexts.length) {
    throw syntax(`${label}: sortedmulti threshold ${threshold} exceeds its ${keyTexts.length} keys (BIP383: k ≤ n)`);
  }
  const keys = keyTexts.map((t, i) => parseKey(t, `key ${i + 1}`));
  for (let i = 0; i < keys.length; i++) {
    for (let j = 0; j < i; j++) {
      if ((keys[i] as ParsedKey).xpub === (keys[j] as ParsedKey).xpub) {
        throw new CustodyError('DESCRIPTOR_KEY', `keys ${j + 1} and ${i + 1} are the same xpub; each cosigner must bring its own key`, { key: i + 1 });
      }
    }
  }
  return { kind: 'wsh-sortedmulti', threshold, keys, warnings: slipWarnings(keys, 'wsh-sortedmulti') };
}

/** `[fingerprint/path]xpub/<0;1>/*` (or `/0/*`, `/1/*`). */
function parseKey(text: string, where: string): ParsedKey {
  if (!text.startsWith('[')) {
    throw new CustodyError(
      'DESCRIPTOR_KEY',
      `${where}: missing key origin [fingerprint/path] before the key (BIP380 §Key Expressions); the signers need it to find their keys in a PSBT`,
      { key: where },
    );
  }
  const close = text.indexOf(']');
  if (close < 0) throw syntax(`${where}: key origin "[" is not closed by "]"`);
  const origin = text.slice(1, close).split('/');
  const fp = origin[0] ?? '';
  if (!/^[0-9a-fA-F]{8}$/.test(fp)) {
    throw new CustodyError('DESCRIPTOR_KEY', `${where}: origin fingerprint must be exactly 8 hex characters, got "${abbreviate(fp)}" (BIP380)`, { key: where });
  }
  const steps = origin.slice(1).map((step) => {
    const match = /^(\d{1,10})(['hH]?)$/.exec(step);
    const n = match ? Number(match[1]) : NaN;
    if (!match || n >= HARDENED_LIMIT) {
      throw syntax(`${where}: origin path step "${abbreviate(step)}" must be NUM or NUMh with NUM below 2^31 (BIP380 §Key Expressions)`);
    }
    return match[2] === '' ? `${n}` : `${n}h`;
  });
  const rest = text.slice(close + 1);
  const slash = rest.indexOf('/');
  const token = slash < 0 ? rest : rest.slice(0, slash);
  const suffixText = slash < 0 ? '' : rest.slice(slash);
  const parsed = parseExtendedPublicKey(token, where);
  const fingerprint = fp.toLowerCase();
  if (parsed.node.depth !== steps.length) {
    throw new CustodyError(
      'DESCRIPTOR_KEY',
      `${where}: the origin path has ${steps.length} step${steps.length === 1 ? '' : 's'} but the xpub is at depth ${parsed.node.depth}; the origin does not describe this key`,
      { key: where },
    );
  }
  // Where the xpub itself pins the fingerprint (master key, or its direct child), it must agree.
  const pinned = parsed.node.depth === 0 ? fingerprintHex(parsed.node) : parsed.node.depth === 1 ? (parsed.node.parentFingerprint >>> 0).toString(16).padStart(8, '0') : undefined;
  if (pinned !== undefined && pinned !== fingerprint) {
    throw new CustodyError('DESCRIPTOR_KEY', `${where}: origin fingerprint ${fingerprint} does not match the xpub's own (${pinned})`, { key: where });
  }
  return {
    fingerprint,
    originPath: steps.join('/'),
    xpub: parsed.xpub,
    net: parsed.net,
    suffix: parseSuffix(suffixText, where),
    ...(parsed.convertedFrom ? { convertedFrom: parsed.convertedFrom } : {}),
  };
}

function parseSuffix(suffix: string, where: string): ChainSuffix {
  if (suffix === '/<0;1>/*') return 'multipath';
  if (suffix === '/0/*') return 0;
  if (suffix === '/1/*') return 1;
  if (/['hH]/.test(suffix)) {
    throw new CustodyError(
      'DESCRIPTOR_KEY',
      `${where}: hardened derivation "${abbreviate(suffix)}" after an xpub needs its private key (BIP32 §Public parent key → public child key); only /<0;1>/* is accepted`,
      { key: where },
    );
  }
  if (suffix === '') {
    throw new CustodyError('DESCRIPTOR_UNSUPPORTED', `${where}: no derivation after the xpub; expected /<0;1>/* (BIP389) so each deposit gets its own address`, { key: where });
  }
  throw new CustodyError(
    'DESCRIPTOR_UNSUPPORTED',
    `${where}: derivation "${abbreviate(suffix)}" after the xpub is not supported; expected /<0;1>/* (or the pair /0/* and /1/*)`,
    { key: where },
  );
}

function call(text: string): { name: string; inner: string } | undefined {
  const match = /^([a-z_]+)\((.*)\)$/s.exec(text);
  return match ? { name: match[1] as string, inner: match[2] as string } : undefined;
}

function slipWarnings(keys: readonly ParsedKey[], kind: ColdKind): string[] {
  const out: string[] = [];
  keys.forEach((k, i) => {
    if (!k.convertedFrom) return;
    const target = k.net === 'mainnet' ? 'xpub' : 'tpub';
    let text = `key ${i + 1}: ${k.convertedFrom.name} converted to ${target} ${abbreviate(k.xpub)} (SLIP-132 version bytes only restate the script type; descriptors carry plain ${target})`;
    const expected = kind === 'wpkh' ? 'p2wpkh' : 'p2wsh';
    if (k.convertedFrom.slip132 !== expected) {
      text += `; note a ${k.convertedFrom.name} is meant for ${k.convertedFrom.slip132 === 'p2wpkh' ? 'single-key P2WPKH' : 'P2WSH multisig'}: check it is the intended account`;
    }
    out.push(text);
  });
  return out;
}

/** BIP84 (single key) and BIP48 script type 2 (P2WSH multisig) are what signers export by default. */
function conventionWarnings(kind: ColdKind, keys: readonly ColdKey[], network: Network): string[] {
  const coin = network === 'mainnet' ? '0h' : '1h';
  const out: string[] = [];
  keys.forEach((k, i) => {
    const steps = k.originPath.split('/');
    const ok = kind === 'wpkh' ? steps.length === 3 && steps[0] === '84h' && steps[1] === coin : steps.length === 4 && steps[0] === '48h' && steps[1] === coin && steps[3] === '2h';
    if (!ok) {
      const want = kind === 'wpkh' ? `84h/${coin}/Nh (BIP84)` : `48h/${coin}/Nh/2h (BIP48)`;
      out.push(`key ${i + 1}: origin path ${k.originPath === '' ? '(empty)' : k.originPath} is not the usual ${want}; make sure the signer uses the same path`);
    }
  });
  return out;
}

function dedupe(items: readonly string[]): string[] {
  return [...new Set(items)];
}

function syntax(message: string): CustodyError {
  return new CustodyError('DESCRIPTOR_SYNTAX', message);
}
