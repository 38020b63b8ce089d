/**
 * `custody-signer`: the offline signer for the air-gapped machine. It must stay network-free: the layer
 * check (.dependency-cruiser.cjs, rule signer-network-free) fails the build if anything it imports reaches
 * chain/, store/, rpc/, keystore/, ZeroMQ, LevelDB or a networking builtin.
 */
import { Command } from 'commander';
import { configure, processIo, runProgram, type CliIo } from './run.js';

export const VERSION = '0.1.0';

export function buildSignerProgram(io: CliIo): Command {
  return configure(new Command('custody-signer'), io)
    .description('Offline signer for cold-wallet PSBTs. Run it only on an air-gapped machine.')
    .version(VERSION);
}

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildSignerProgram(io), argv, io);
}
