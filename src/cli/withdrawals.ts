/** `custody withdrawals list | show ID | approve ID | reject ID | cancel ID`: operators on the admin socket. */
import type { Command } from 'commander';
import type { WithdrawalView } from '../service/withdrawals.js';
import { configure, type CliIo } from './run.js';
import { adminOptions, formatSats, withAdmin } from './operator.js';

interface Opts {
  admin?: string;
  config?: string;
}

function line(w: WithdrawalView): string {
  const approvals = w.requiredApprovals > 0 ? ` approvals ${w.approvals.length}/${w.requiredApprovals}` : '';
  return `${w.id}  ${w.state.padEnd(16)} ${formatSats(w.amountSats)} to ${w.address} (client ${w.client}, request ${w.requestId})${approvals}${w.txid === null ? '' : ` tx ${w.txid}`}`;
}

export function registerWithdrawalCommands(program: Command, io: CliIo): void {
  const cmd = configure(program.command('withdrawals'), io).description('Withdrawals: list, show, approve, reject, cancel');

  adminOptions(configure(cmd.command('list'), io))
    .description('List withdrawals, oldest first')
    .option('--state <state>', 'only this state (pending_approval, approved, signed, broadcast, confirmed, failed, cancelled, rejected)')
    .option('--json', 'machine-readable output')
    .action(async (o: Opts & { state?: string; json?: boolean }) => {
      const r = (await withAdmin(o, (c) => c.call('withdrawal.list', { limit: 1000, ...(o.state === undefined ? {} : { state: o.state }) }))) as { withdrawals: WithdrawalView[] };
      io.out(o.json === true ? JSON.stringify(r.withdrawals, null, 2) : r.withdrawals.map(line).join('\n') || '(none)');
    });

  for (const [name, method, what] of [
    ['show', 'withdrawal.get', 'Show one withdrawal'],
    ['approve', 'withdrawal.approve', 'Approve a withdrawal waiting for approval (as this operator; never the requesting client)'],
    ['reject', 'withdrawal.reject', 'Reject a withdrawal waiting for approval'],
    ['cancel', 'withdrawal.cancel', 'Cancel a withdrawal not yet signed (its velocity charge is released)'],
  ] as const) {
    adminOptions(configure(cmd.command(`${name} <id>`), io))
      .description(what)
      .action(async (id: string, o: Opts) => {
        const w = (await withAdmin(o, (c) => c.call(method, { id }))) as WithdrawalView;
        io.out(name === 'show' ? JSON.stringify(w, null, 2) : line(w));
      });
  }
}
