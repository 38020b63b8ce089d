/**
 * Where secrets come from (DESIGN §10): a hidden prompt on the terminal, or, for automation and tests,
 * one secret per line from a file descriptor given with --passphrase-fd / --mnemonic-fd.
 * Never argv, never the environment. Secrets are Buffers so callers can wipe them.
 */
import { readFileSync } from 'node:fs';
import { CustodyError } from '../errors.js';
import { wipe } from '../crypto/wipe.js';

export interface SecretSource {
  /** Reads one secret. `confirm` asks twice on a terminal and retries on mismatch. */
  read(label: string, opts?: { confirm?: boolean }): Promise<Buffer>;
  /** Says something to whoever types the secrets (stderr); silent for fd input. */
  tell(text: string): void;
  readonly interactive: boolean;
}

/** Reads every line of `fd` up front; each read() hands out the next one. */
export function fdSecretSource(fd: number, option: string): SecretSource {
  let all: Buffer;
  try {
    all = readFileSync(fd);
  } catch (err) {
    throw new CustodyError('USAGE', `${option} ${fd}: cannot read that file descriptor (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= all.length; i++) {
    if (i === all.length || all[i] === 0x0a) {
      let end = i;
      if (end > start && all[end - 1] === 0x0d) end--;
      if (i < all.length || end > start) lines.push(Buffer.from(all.subarray(start, end)));
      start = i + 1;
    }
  }
  wipe(all);
  let used = 0;
  return {
    interactive: false,
    tell: () => undefined,
    async read(label) {
      const line = lines[used];
      if (line === undefined) {
        throw new CustodyError('USAGE', `${option} ${fd}: no line left for ${label} (read ${used} line${used === 1 ? '' : 's'})`);
      }
      lines[used] = Buffer.alloc(0);
      used++;
      return line;
    },
  };
}

export function ttySecretSource(stdin: NodeJS.ReadStream = process.stdin, stderr: NodeJS.WriteStream = process.stderr): SecretSource {
  return {
    interactive: true,
    tell: (text) => void stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    async read(label, opts) {
      if (!stdin.isTTY) {
        throw new CustodyError('USAGE', `no terminal to ask for ${label}; pass secrets with the --*-fd option instead`);
      }
      for (;;) {
        const first = await hiddenPrompt(`${label}: `, stdin, stderr);
        if (!opts?.confirm) return first;
        const second = await hiddenPrompt(`${label} (again): `, stdin, stderr);
        const same = first.length === second.length && first.equals(second);
        wipe(second);
        if (same) return first;
        wipe(first);
        stderr.write('The two entries differ; try again.\n');
      }
    },
  };
}

/** Picks the fd source when the option was given, else the terminal. */
export function secretSource(fd: number | undefined, option: string): SecretSource {
  return fd === undefined ? ttySecretSource() : fdSecretSource(fd, option);
}

/**
 * Reads a line with echo off. Works on raw bytes so the secret never becomes a JavaScript string
 * (strings cannot be wiped). Backspace removes a whole UTF-8 character; Ctrl-C and Ctrl-D cancel.
 */
export function hiddenPrompt(prompt: string, stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    stderr.write(prompt);
    let buf = Buffer.alloc(256);
    let len = 0;
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const finish = (err: CustodyError | null): void => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stderr.write('\n');
      if (err !== null) {
        wipe(buf);
        reject(err);
        return;
      }
      const out = Buffer.from(buf.subarray(0, len));
      wipe(buf);
      resolve(out);
    };
    const onData = (chunk: Buffer): void => {
      for (const byte of chunk) {
        if (byte === 0x0d || byte === 0x0a) {
          wipe(chunk);
          finish(null);
          return;
        }
        if (byte === 0x03 || (byte === 0x04 && len === 0)) {
          wipe(chunk);
          finish(new CustodyError('USAGE', 'cancelled at the prompt'));
          return;
        }
        if (byte === 0x7f || byte === 0x08) {
          // Drop UTF-8 continuation bytes (10xxxxxx), then the lead byte.
          while (len > 0 && ((buf[len - 1] ?? 0) & 0xc0) === 0x80) len--;
          if (len > 0) len--;
          continue;
        }
        if (byte < 0x20) continue; // other control keys are ignored, never stored
        if (len === buf.length) {
          const bigger = Buffer.alloc(buf.length * 2);
          buf.copy(bigger);
          wipe(buf);
          buf = bigger;
        }
        buf[len++] = byte;
      }
      wipe(chunk);
    };
    stdin.on('data', onData);
  });
}
