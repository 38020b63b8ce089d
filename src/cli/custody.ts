/** `custody`: the operators' command. Each command group lives in its own module. */
import { Command } from 'commander';
import { configure, processIo, runProgram, type CliIo } from './run.js';
import { registerKeystoreCommands } from './keystore.js';
import { registerOperatorCommands } from './operator.js';
import { registerAddressCommands } from './addresses.js';
import { registerKeyCommands } from './keys.js';
import { registerAuditCommands } from './audit.js';
import { registerChainCommands } from './chain.js';
import { registerWithdrawalCommands } from './withdrawals.js';
import { registerSweepCommands } from './sweeps.js';

export const VERSION = '0.1.0';

export function buildCustodyProgram(io: CliIo): Command {
  const program = configure(new Command('custody'), io)
    .description('Operate a custody daemon: keystore ceremonies, addresses, unlock, freeze, audit.')
    .version(VERSION);
  registerKeystoreCommands(program, io);
  registerOperatorCommands(program, io);
  registerAddressCommands(program, io);
  registerKeyCommands(program, io);
  registerAuditCommands(program, io);
  registerChainCommands(program, io);
  registerWithdrawalCommands(program, io);
  registerSweepCommands(program, io);
  return program;
}

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  return runProgram(buildCustodyProgram(io), argv, io);
}
