/** Runs the real command-line programs (bin/*) as child processes, feeding secrets through fd 3. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment a user's shell would give: without the test runner's loader hooks (NODE_OPTIONS). */
export function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (k !== 'NODE_OPTIONS' && !k.startsWith('TAP')) env[k] = v;
  return { ...env, ...extra };
}

export function runCli(bin: 'custody' | 'custody-signer' | 'custodyd', args: readonly string[], opts: { fd3?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    // tap patches child_process to inject its loader through NODE_OPTIONS; `env -u` starts the binary
    // exactly as an operator's shell would.
    const child = spawn('env', ['-u', 'NODE_OPTIONS', process.execPath, join(REPO, 'bin', bin), ...args], {
      cwd: opts.cwd ?? REPO,
      env: cleanEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const fd3 = child.stdio[3] as NodeJS.WritableStream;
    fd3.on('error', () => undefined); // the program may exit before reading it all
    fd3.end(opts.fd3 ?? '');
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
