/** Reads the TOML configuration named by --config (or CUSTODY_CONFIG) into a frozen, typed Config. */
import { readFileSync } from 'node:fs';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { CustodyError } from '../errors.js';
import { configSchema, type Config } from './schema.js';
import { parseDescriptor } from '../wallet/descriptor.js';

export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const file = flag ?? env['CUSTODY_CONFIG'];
  if (file === undefined || file === '') {
    throw new CustodyError('USAGE', 'no configuration file: pass --config FILE or set CUSTODY_CONFIG');
  }
  return file;
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new CustodyError('CONFIG_NOT_FOUND', `${file}: cannot read the configuration file (${code})`, { file });
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, source = 'config'): Config {
  let raw: unknown;
  try {
    raw = parse(text, { integersAsBigInt: true });
  } catch (err) {
    if (err instanceof TomlError) {
      throw new CustodyError('CONFIG_INVALID', `${source}:${err.line}:${err.column}: not valid TOML: ${firstLine(err.message)}`, {
        line: err.line,
        column: err.column,
      });
    }
    throw err;
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map(formatIssue);
    throw new CustodyError('CONFIG_INVALID', `${source}: ${problems.join('; ')}`, { problems });
  }
  try {
    // Parsed again where it is used; here only so a bad descriptor fails at load, naming the key.
    parseDescriptor(result.data.cold.descriptor, { network: result.data.network, requireChecksum: true });
  } catch (err) {
    if (err instanceof CustodyError) {
      throw new CustodyError('CONFIG_INVALID', `${source}: cold.descriptor: [${err.code}] ${err.message}`, { problems: [`cold.descriptor: ${err.message}`] });
    }
    throw err;
  }
  return deepFreeze(result.data);
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const where = key === '' ? '' : `${key}.`;
    return issue.keys.map((k) => `${where}${k}: unknown key`).join('; ');
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    return `${key}: required key is missing`;
  }
  return `${key === '' ? '(top level)' : key}: ${issue.message}`;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
