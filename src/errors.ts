/**
 * Typed errors with stable codes. A message names the field, the value (never a secret) and the rule;
 * transports map codes, never messages, and never send a stack trace (Vault's http/sys_seal.go does the same).
 */

export const ERROR_CODES = {
  USAGE: 'bad command-line usage',
  CONFIG_NOT_FOUND: 'the configuration file could not be read',
  CONFIG_INVALID: 'the configuration file does not match the schema',
  KEYSTORE_NOT_FOUND: 'the keystore file does not exist',
  KEYSTORE_EXISTS: 'refusing to overwrite an existing keystore',
  KEYSTORE_INVALID: 'the keystore file is not a valid keystore',
  KEYSTORE_CORRUPT: 'the keystore file failed its integrity check',
  KEYSTORE_IO: 'the keystore file could not be written',
  WEAK_PASSPHRASE: 'the passphrase does not meet the strength rules',
  PASSPHRASE_MISMATCH: 'the two passphrase entries differ',
  UNKNOWN_CUSTODIAN: 'no custodian of that name in the keystore',
  BAD_PASSPHRASE: 'the passphrase does not open that custodian\'s share',
  UNLOCK_BACKOFF: 'too many failed attempts for that custodian; wait before retrying',
  UNLOCK_FAILED: 'the combined shares did not decrypt the hot seed',
  NOT_ENOUGH_CUSTODIANS: 'fewer custodians than the threshold',
  WALLET_LOCKED: 'the hot wallet is locked',
  ALREADY_UNLOCKED: 'the hot wallet is already unlocked',
  // wallet: descriptors, keys and addresses
  DESCRIPTOR_SYNTAX: 'the output descriptor cannot be parsed',
  DESCRIPTOR_CHECKSUM: 'the output descriptor checksum is missing or wrong (BIP380)',
  DESCRIPTOR_KEY: 'a key in the descriptor is invalid, private, or lacks its origin',
  DESCRIPTOR_UNSUPPORTED: 'the descriptor uses a script type this daemon does not support',
  DESCRIPTOR_NETWORK: 'the descriptor\'s keys belong to another network',
  MNEMONIC_INVALID: 'the mnemonic has an unknown word or a bad checksum (BIP39)',
  // store and services
  INVALID_ARGUMENT: 'a request field is missing or breaks its rule',
  REQUEST_ID_CONFLICT: 'the requestId was already used with other parameters',
  STORE_MISMATCH: 'the data dir was made for another network or cold descriptor',
  STORE_VERSION: 'the data dir was written by a newer schema version',
  STORE_LOCKED: 'another process holds the data dir',
  STORE_IO: 'the data dir could not be read or written',
  INDEX_EXHAUSTED: 'no unhardened derivation index is left on this chain',
  // RPC and daemon
  PARSE_ERROR: 'the frame is not valid JSON',
  INVALID_REQUEST: 'the frame is not a JSON-RPC 2.0 request',
  METHOD_NOT_FOUND: 'no such method',
  INVALID_PARAMS: 'a parameter is missing, unknown, or breaks its rule',
  FRAME_TOO_LARGE: 'the frame exceeds the size limit',
  UNAUTHENTICATED: 'the request authenticator is missing, wrong, or outside the time window',
  REPLAYED: 'this request was already received (nonce reused)',
  FORBIDDEN: 'the client\'s roles do not allow this method',
  RATE_LIMITED: 'too many requests from this client; slow down',
  TIMEOUT: 'no reply within the timeout',
  UNAVAILABLE: 'the daemon is not reachable',
  KEY_FILE: 'a CURVE key file is missing, malformed, or readable by others',
  FROZEN: 'the daemon is frozen by an operator',
  AUDIT_BROKEN: 'the audit chain does not verify',
  // chain
  CHAIN_UNAVAILABLE: 'the node (bitcoind) could not be reached',
  CHAIN_AUTH: 'the node refused the RPC credentials',
  CHAIN_RPC: 'the node answered the call with an error',
  BLOCK_INVALID: 'a block from the node does not parse',
  TX_INVALID: 'a transaction does not parse',
  CHAIN_DISABLED: 'the daemon runs without a node ([chain] is not configured)',
  RESCAN_RANGE: 'the rescan start height is outside the blocks the daemon follows',
  UTXO_UNAVAILABLE: 'the coin is unknown, spent, or reserved by another request',
  // withdrawals
  WITHDRAWALS_DISABLED: 'the daemon has no [withdrawals] section in its configuration',
  ADDRESS_INVALID: 'the destination is not an address of the daemon\'s network that it pays',
  AMOUNT_INVALID: 'the amount is below dust, above the maximum, or not an integer of satoshis',
  WITHDRAWAL_NOT_FOUND: 'no withdrawal with that id',
  WITHDRAWAL_STATE: 'the withdrawal is not in a state that allows this',
  POLICY_MAX_AMOUNT: 'the amount is above the per-withdrawal maximum',
  POLICY_VELOCITY: 'the amount would exceed a rolling withdrawal limit',
  POLICY_DESTINATION: 'the destination is refused by the allowlist or denylist',
  POLICY_SELF_APPROVAL: 'a withdrawal cannot be approved by the client that requested it',
  // cold sweeps and the offline signer
  PSBT_INVALID: 'the file is not a valid PSBT (BIP174)',
  SWEEP_NOT_FOUND: 'no sweep proposal with that id or unsigned transaction',
  SWEEP_MISMATCH: 'the PSBT is not the transaction the daemon proposed',
  SWEEP_SIGNATURES: 'a signature is invalid, or fewer signatures than the descriptor requires',
  SWEEP_STATE: 'the sweep is not in a state that allows this',
  SWEEP_FUNDS: 'the cold wallet has not enough confirmed coins for this sweep',
  SIGNER_REFUSED: 'the offline signer refuses to sign this PSBT (unknown output, fee cap, foreign key)',
  SIGNER_CONFIG: 'the offline signer\'s pinned configuration is missing or invalid',
  INTERNAL: 'internal error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class CustodyError extends Error {
  readonly code: ErrorCode;
  /** Safe, non-secret structured context (field names, limits, counts). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CustodyError';
    this.code = code;
    this.details = details === undefined ? undefined : Object.freeze({ ...details });
  }

  /** What may cross a trust boundary: code, message and details; never the stack or the cause. */
  toJSON(): { code: ErrorCode; message: string; details?: Readonly<Record<string, unknown>> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export function isCustodyError(err: unknown, code?: ErrorCode): err is CustodyError {
  return err instanceof CustodyError && (code === undefined || err.code === code);
}
