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
  /** Reads a non-secret line with echo (e.g. a custodian's name) through the same terminal session. */
  readVisible(label: string): Promise<string>;
  /** Gives the terminal back (echo on). Call it in a finally once all secrets are read. */
  close(): void;
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
    close: () => lines.forEach((l) => wipe(l)),
    async readVisible(label) {
      throw new CustodyError('USAGE', `${label}: not read from ${option}; give it as an option`);
    },
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

/**
 * Hidden prompts on the terminal. From the first prompt until close(), the terminal stays in raw mode
 * (no echo) and keystrokes typed while no prompt is open are discarded, never echoed: otherwise a
 * custodian typing ahead while the previous passphrase is being checked would see it on screen.
 */
export function ttySecretSource(stdin: NodeJS.ReadStream = process.stdin, stderr: NodeJS.WriteStream = process.stderr): SecretSource {
  let active: ((chunk: Buffer) => void) | undefined;
  let open = false;
  const onData = (chunk: Buffer): void => {
    if (active) {
      active(chunk);
      return;
    }
    const interrupt = chunk.includes(0x03);
    wipe(chunk); // typed ahead: dropped, like getpass(3) flushing pending input
    if (interrupt) {
      // Ctrl-C between prompts (say, during a scrypt run): give the terminal back and stop.
      stdin.setRawMode(false);
      stderr.write('\ncancelled\n');
      process.exit(130);
    }
  };
  const ensureOpen = (label: string): void => {
    if (!stdin.isTTY) {
      throw new CustodyError('USAGE', `no terminal to ask for ${label}; pass secrets with the --*-fd option instead`);
    }
    if (open) return;
    open = true;
    stdin.setRawMode(true);
    stdin.on('data', onData);
    stdin.resume();
  };
  const prompt = (text: string, echo = false): Promise<Buffer> =>
    hiddenPrompt(
      text,
      stderr,
      (handler) => {
        active = handler;
      },
      echo,
    );
  return {
    interactive: true,
    tell: (text) => void stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    async read(label, opts) {
      ensureOpen(label);
      for (;;) {
        const first = await prompt(`${label}: `);
        if (!opts?.confirm) return first;
        const second = await prompt(`${label} (again): `);
        const same = first.length === second.length && first.equals(second);
        wipe(second);
        if (same) return first;
        wipe(first);
        stderr.write('The two entries differ; try again.\n');
      }
    },
    async readVisible(label) {
      ensureOpen(label);
      const line = await prompt(`${label}: `, true);
      return line.toString('utf8');
    },
    close() {
      if (!open) return;
      open = false;
      active = undefined;
      stdin.removeListener('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
    },
  };
}

/** Picks the fd source when the option was given, else the terminal. */
export function secretSource(fd: number | undefined, option: string): SecretSource {
  return fd === undefined ? ttySecretSource() : fdSecretSource(fd, option);
}

/**
 * Reads one line from an already-raw terminal. Works on raw bytes so the secret never becomes a
 * JavaScript string (strings cannot be wiped). Backspace removes a whole UTF-8 character; Ctrl-C and
 * Ctrl-D cancel. `attach` routes keystrokes here until the line ends.
 */
export function hiddenPrompt(
  prompt: string,
  stderr: NodeJS.WriteStream,
  attach: (handler: ((chunk: Buffer) => void) | undefined) => void,
  echo = false,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    stderr.write(prompt);
    let buf = Buffer.alloc(256);
    let len = 0;
    const finish = (err: CustodyError | null): void => {
      attach(undefined);
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
    attach((chunk: Buffer): void => {
      for (const byte of chunk) {
        if (byte === 0x0d || byte === 0x0a) {
          // Anything after Enter in the same chunk was typed ahead: dropped with the chunk.
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
          if (len > 0) {
            len--;
            if (echo) stderr.write('\b \b');
          }
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
        if (echo) stderr.write(Buffer.from([byte]));
      }
      wipe(chunk);
    });
  });
}
