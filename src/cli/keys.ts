/**
 * `custody keys server|client|operator`: make CURVE key pairs for the app RPC and the remote admin door (DESIGN §4). The key pair goes to
 * a 0600 file that is never overwritten; stdout gets only the public part, ready to paste into the
 * other side's configuration, so the secret key is never printed.
 */
import { Command } from 'commander';
import { CLIENT_NAME_PATTERN, CLIENT_ROLES, isClientName, isClientRole, newCurveKeyPair, writeKeyPairFile, type ClientRole } from '../rpc/curve-keys.js';
import { configure, parseList, usage, type CliIo } from './run.js';

export function parseRoles(value: string): ClientRole[] {
  const roles = parseList(value, '--role');
  for (const r of roles) if (!isClientRole(r)) throw usage(`--role: "${r}" is not a role; expected ${CLIENT_ROLES.join(', ')}`);
  if (new Set(roles).size !== roles.length) throw usage(`--role: a role is listed twice in "${value}"`);
  return roles as ClientRole[];
}

export function registerKeyCommands(program: Command, io: CliIo): void {
  const group = configure(program.command('keys'), io).description('Make CURVE key pairs for the app RPC (daemon and app servers) and the remote admin door (operators).');

  configure(group.command('server'), io)
    .description("Write the daemon's CURVE key pair (mode 0600, never overwrites) and print its public key for the app servers")
    .requiredOption('--out <file>', 'key pair file to create')
    .action((opts: { out: string }) => {
      const pair = newCurveKeyPair();
      writeKeyPairFile(opts.out, { kind: 'server', ...pair });
      io.err(`wrote the server key pair to ${opts.out} (mode 0600); keep it on the daemon host only`);
      io.out(`serverPublicKey = "${pair.publicKey}"\n# give this line to every app server's client configuration; the secret key stays in ${opts.out}\n`);
    });

  configure(group.command('client'), io)
    .description("Write an app server's CURVE key pair (mode 0600, never overwrites) and print the daemon's [[clients]] entry")
    .argument('<name>', `client name (${CLIENT_NAME_PATTERN.source}), as it appears in audit lines`)
    .requiredOption('--role <roles>', `comma-separated: ${CLIENT_ROLES.join(', ')}`)
    .requiredOption('--out <file>', 'key pair file to create (copy it to the app server only)')
    .action((name: string, opts: { role: string; out: string }) => {
      if (!isClientName(name)) throw usage(`NAME: "${name}" must match ${CLIENT_NAME_PATTERN.source}`);
      const roles = parseRoles(opts.role);
      const pair = newCurveKeyPair();
      writeKeyPairFile(opts.out, { kind: 'client', name, roles, ...pair });
      io.err(`wrote the key pair for client "${name}" to ${opts.out} (mode 0600); add this block to the daemon's configuration:`);
      io.out(`[[clients]]\nname = "${name}"\npublicKey = "${pair.publicKey}"\nroles = [${roles.map((r) => `"${r}"`).join(', ')}]\n`);
    });

  configure(group.command('operator'), io)
    .description("Write an operator's CURVE key pair for the remote admin door (mode 0600, never overwrites) and print the daemon's [[operators]] entry")
    .argument('<name>', `operator name (${CLIENT_NAME_PATTERN.source}), as it appears in audit lines (operator:NAME)`)
    .requiredOption('--out <file>', "key pair file to create (keep it on the operator's host only)")
    .action((name: string, opts: { out: string }) => {
      if (!isClientName(name)) throw usage(`NAME: "${name}" must match ${CLIENT_NAME_PATTERN.source}`);
      const pair = newCurveKeyPair();
      writeKeyPairFile(opts.out, { kind: 'operator', name, ...pair });
      io.err(`wrote the key pair for operator "${name}" to ${opts.out} (mode 0600); add this block to the daemon's configuration:`);
      io.out(`[[operators]]\nname = "${name}"\npublicKey = "${pair.publicKey}"\n`);
    });
}
