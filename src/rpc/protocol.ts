/**
 * The wire format shared by the daemon and its clients (DESIGN §4): one ZeroMQ frame carries one
 * JSON-RPC 2.0 object. Requests are decoded strictly (unknown top-level members rejected, a size limit
 * checked before parsing); every error carries a stable string code in `error.data.code`, a message
 * naming the field and rule, and never a stack trace or a secret.
 */
import { isUtf8 } from 'node:buffer';
import { CustodyError, isCustodyError, type ErrorCode } from '../errors.js';

export const PROTOCOL_VERSION = 'custody-rpc-v1';
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

export type RequestId = string | number;

export interface RequestAuth {
  readonly client: string;
  readonly ts: number;
  readonly nonce: string;
  readonly mac: string;
}

export interface RpcRequest {
  readonly jsonrpc: '2.0';
  readonly id: RequestId;
  readonly method: string;
  readonly params?: unknown;
  /** App socket: the authenticator binding the request to the sending client's key (rpc/auth.ts). */
  readonly auth?: unknown;
  /** Admin socket: who is acting (the operator's login name), for the audit log. */
  readonly operator?: string;
}

export interface RpcErrorBody {
  readonly code: number;
  readonly message: string;
  readonly data: { readonly code: ErrorCode; readonly details?: Readonly<Record<string, unknown>> };
}

export type RpcResponse =
  | { readonly jsonrpc: '2.0'; readonly id: RequestId; readonly result: unknown }
  | { readonly jsonrpc: '2.0'; readonly id: RequestId | null; readonly error: RpcErrorBody };

/** JSON-RPC 2.0 §5.1 reserves -32700..-32600 for protocol errors; everything else is -32000 with data.code. */
const JSON_RPC_CODES: Partial<Record<ErrorCode, number>> = {
  PARSE_ERROR: -32700,
  FRAME_TOO_LARGE: -32600,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INVALID_ARGUMENT: -32602,
  INTERNAL: -32603,
};

export function jsonRpcCode(code: ErrorCode): number {
  return JSON_RPC_CODES[code] ?? -32000;
}

/** Deeper JSON than any method needs; deeper input could exhaust the stack of whatever walks it. */
export const MAX_JSON_DEPTH = 32;

/** Deepest array/object nesting of a JSON text, found by scanning (no recursion), skipping strings. */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

const TOP_LEVEL = new Set(['jsonrpc', 'id', 'method', 'params', 'auth', 'operator']);
const METHOD = /^[a-z][A-Za-z0-9]*(\.[a-z][A-Za-z0-9]*)*$/;
const MAX_ID_LENGTH = 128;

/** The id of a frame, if one can be recovered, so an error reply can still be matched by the client. */
export function peekId(doc: unknown): RequestId | null {
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc)) {
    const id = (doc as Record<string, unknown>)['id'];
    if ((typeof id === 'string' && id.length <= MAX_ID_LENGTH) || (typeof id === 'number' && Number.isSafeInteger(id))) return id;
  }
  return null;
}

export class DecodeError extends CustodyError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly id: RequestId | null,
  ) {
    super(code, message);
  }
}

/** Decodes one request frame or throws DecodeError (with whatever id could be recovered). */
export function decodeRequest(frame: Uint8Array, maxBytes = DEFAULT_MAX_FRAME_BYTES): RpcRequest {
  if (frame.length > maxBytes) throw new DecodeError('FRAME_TOO_LARGE', `frame: ${frame.length} bytes exceeds the limit of ${maxBytes}`, null);
  let text: string;
  let doc: unknown;
  try {
    // isUtf8 + toString is several times cheaper than a fatal TextDecoder on this hot path.
    if (!isUtf8(frame)) throw new Error('not UTF-8');
    text = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8');
    doc = JSON.parse(text);
  } catch {
    throw new DecodeError('PARSE_ERROR', 'frame: not valid UTF-8 JSON', null);
  }
  if (jsonDepth(text) > MAX_JSON_DEPTH) {
    throw new DecodeError('INVALID_REQUEST', `frame: JSON nested deeper than ${MAX_JSON_DEPTH} levels`, peekId(doc));
  }
  const id = peekId(doc);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DecodeError('INVALID_REQUEST', 'frame: expected one JSON-RPC 2.0 request object (batches are not supported)', id);
  }
  const obj = doc as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!TOP_LEVEL.has(key)) throw new DecodeError('INVALID_REQUEST', `${key}: unknown member of a request`, id);
  }
  if (obj['jsonrpc'] !== '2.0') throw new DecodeError('INVALID_REQUEST', 'jsonrpc: expected "2.0"', id);
  if (id === null) throw new DecodeError('INVALID_REQUEST', `id: expected a string of at most ${MAX_ID_LENGTH} characters or a safe integer (notifications are not supported)`, null);
  const method = obj['method'];
  if (typeof method !== 'string' || method.length > 64 || !METHOD.test(method)) {
    throw new DecodeError('INVALID_REQUEST', 'method: expected a method name such as "deposit.newAddress"', id);
  }
  const operator = obj['operator'];
  if (operator !== undefined && (typeof operator !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(operator))) {
    throw new DecodeError('INVALID_REQUEST', 'operator: expected a login name', id);
  }
  return operator === undefined
    ? { jsonrpc: '2.0', id, method, params: obj['params'], auth: obj['auth'] }
    : { jsonrpc: '2.0', id, method, params: obj['params'], auth: obj['auth'], operator };
}

/** What may cross the wire for any error: known codes keep their safe message; anything else is INTERNAL. */
export function errorBody(err: unknown): RpcErrorBody {
  if (isCustodyError(err)) {
    const data = err.details === undefined ? { code: err.code } : { code: err.code, details: err.details };
    return { code: jsonRpcCode(err.code), message: err.message, data };
  }
  return { code: jsonRpcCode('INTERNAL'), message: 'internal error; see the daemon log', data: { code: 'INTERNAL' } };
}

export function encodeResponse(res: RpcResponse): Buffer {
  return Buffer.from(JSON.stringify(res), 'utf8');
}

/**
 * The reply as a string: zeromq.js copies a string into the message once, while a Buffer over 128 bytes
 * is sent zero-copy and must be released by a callback on the main thread after the I/O thread sent it.
 */
export function encodeResponseText(res: RpcResponse): string {
  return JSON.stringify(res);
}

/** The same text as encodeResponseText({jsonrpc: '2.0', id, result}), without building the envelope object. */
export function encodeResultText(id: RequestId, result: unknown): string {
  return `{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${(JSON.stringify(result ?? null) as string | undefined) ?? 'null'}}`;
}

export function decodeResponse(frame: Uint8Array): RpcResponse {
  // A view, not a copy (Buffer.from(Uint8Array) would copy).
  const doc = JSON.parse(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8')) as RpcResponse;
  if (doc === null || typeof doc !== 'object' || doc.jsonrpc !== '2.0') throw new Error('not a JSON-RPC response');
  return doc;
}

/** Turns a failure response back into a CustodyError on the client side. */
export function responseError(body: RpcErrorBody): CustodyError {
  const code = (body.data?.code ?? 'INTERNAL') as ErrorCode;
  return new CustodyError(code, body.message, body.data?.details as Record<string, unknown> | undefined);
}
