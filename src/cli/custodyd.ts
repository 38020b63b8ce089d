/** `custodyd`: the daemon. Issue 4 brings it to life; until then it says so and refuses to start. */
import { processIo, EXIT_FAILED, type CliIo } from './run.js';

export async function main(_argv: readonly string[], io: CliIo = processIo): Promise<number> {
  io.err('custodyd: the daemon is not implemented yet in this version');
  return EXIT_FAILED;
}
