/** `hanat-lab fault …`: inject a failure into the running lab (and lift it with --off). */
import type { Command } from 'commander';
import { adminRequest } from '../dataplane/admin.js';
import { findLab } from '../dataplane/client.js';
import { LabUsageError, renderFault, renderOutages, stateDirOf, type LabCommandDeps } from '../dataplane/cli-support.js';
import type { FaultRequest, FaultResult, OutageReport } from '../dataplane/lab.js';
import { labCall } from './probe.js';

export interface FaultOutcome extends FaultResult {
  /** With `--wait`: each affected host's outage until traffic flowed again. */
  outages?: OutageReport[];
}

export async function faultAction(req: FaultRequest, opts: { lab?: string; wait?: boolean; timeout?: string }, deps: LabCommandDeps): Promise<FaultOutcome> {
  const timeoutS = opts.timeout === undefined ? 600 : Number(opts.timeout);
  if (!(timeoutS > 0)) throw new LabUsageError(`--timeout must be a positive number of seconds, got ${JSON.stringify(opts.timeout)}`);
  return labCall(async () => {
    const admin = findLab(stateDirOf(deps), opts.lab).admin;
    const result = await adminRequest<FaultResult>(admin, 'POST', '/fault', req);
    if (!opts.wait) return result;
    if (result.affectedHosts.length === 0) throw new LabUsageError(`no private host routes through ${result.instances.join(', ')}, so there is no outage to wait for`);
    const outages = await adminRequest<OutageReport[]>(admin, 'POST', '/outage', { hosts: result.affectedHosts, since: result.at, timeoutMs: timeoutS * 1000 }, timeoutS * 1000 + 5_000);
    return { ...result, outages };
  });
}

export function registerFault(program: Command, deps: LabCommandDeps): void {
  const fault = program
    .command('fault')
    .description('inject a failure into the running lab; <target> is an instance id or an AZ name (its NAT)')
    .option('--lab <prefix>', 'which lab, when several run');
  const run = async (req: FaultRequest, cmd: Command, extra: { wait?: boolean; timeout?: string; json?: boolean } = {}) => {
    const globals = cmd.optsWithGlobals<{ lab?: string; json?: boolean }>();
    const outcome = await faultAction(req, { ...globals, ...extra }, deps);
    if (globals.json || extra.json) deps.stdout(JSON.stringify(outcome, null, 2) + '\n');
    else {
      deps.stdout(renderFault(outcome));
      if (outcome.outages) deps.stdout(`traffic flows again:\n${renderOutages(outcome.outages)}`);
    }
  };
  const withJson = (c: Command) => c.option('--json', 'print the result as JSON');

  withJson(fault.command('crash <target>'))
    .description(
      'crash an instance in place (hardware fault, kernel panic, hang): it stops answering anything, EC2 still reports it running and its routes active until its status checks fail',
    )
    .option('--wait', 'wait until the private hosts that went through it reach the internet again, and print the outage')
    .option('--timeout <s>', 'with --wait: give up after this many seconds', '600')
    .action((target: string, opts: { wait?: boolean; timeout?: string; json?: boolean }, cmd: Command) => run({ kind: 'crash', target }, cmd, opts));
  withJson(fault.command('kill <target>'))
    .description('terminate an instance (Spot interruption, someone terminates it): processes and namespace gone, EC2 reports it terminated at once')
    .option('--wait', 'wait until the private hosts that went through it reach the internet again, and print the outage')
    .option('--timeout <s>', 'with --wait: give up after this many seconds', '600')
    .action((target: string, opts: { wait?: boolean; timeout?: string; json?: boolean }, cmd: Command) => run({ kind: 'kill', target }, cmd, opts));
  withJson(fault.command('stop-agent <target>'))
    .description('freeze the agent (SIGSTOP); the instance keeps forwarding')
    .option('--off', 'resume it (SIGCONT)')
    .action((target: string, opts: { off?: boolean }, cmd: Command) => run({ kind: 'stop-agent', target, off: opts.off === true }, cmd));
  withJson(fault.command('kill-agent <target>'))
    .description('kill the agent (SIGKILL); the instance keeps forwarding')
    .action((target: string, _opts: unknown, cmd: Command) => run({ kind: 'kill-agent', target }, cmd));
  withJson(fault.command('gray <target>'))
    .description('gray failure: instance and agent alive, but the router drops what it forwards')
    .option('--off', 'lift it')
    .action((target: string, opts: { off?: boolean }, cmd: Command) => run({ kind: 'gray', target, off: opts.off === true }, cmd));
  withJson(fault.command('cut-upstream <target>'))
    .description("cut the instance's path to the internet gateway (VPC traffic still flows)")
    .option('--off', 'restore it')
    .action((target: string, opts: { off?: boolean }, cmd: Command) => run({ kind: 'cut-upstream', target, off: opts.off === true }, cmd));
  withJson(fault.command('partition <a> <b>'))
    .description('drop all traffic between two instances')
    .option('--off', 'heal it')
    .action((a: string, b: string, opts: { off?: boolean }, cmd: Command) => run({ kind: 'partition', target: a, other: b, off: opts.off === true }, cmd));
  withJson(fault.command('az-launch <az>'))
    .description('make an AZ unable to launch instances (Auto Scaling launches there fail)')
    .option('--off', 'let it launch again')
    .action((az: string, opts: { off?: boolean }, cmd: Command) => run({ kind: 'az-launch', az, off: opts.off === true }, cmd));
  withJson(fault.command('throttle'))
    .description('throttle the AWS API (RequestLimitExceeded / Throttling)')
    .option('--action <name>', 'only this API action, e.g. ReplaceRoute (default: all)')
    .option('--rate <0-1>', 'share of calls throttled (default 1)')
    .option('--count <n>', 'throttle this many calls, then stop')
    .option('--off', 'remove all throttling')
    .action((opts: { action?: string; rate?: string; count?: string; off?: boolean }, cmd: Command) =>
      run(
        {
          kind: 'throttle',
          off: opts.off === true,
          ...(opts.action ? { action: opts.action } : {}),
          ...(opts.rate !== undefined ? { rate: Number(opts.rate) } : {}),
          ...(opts.count !== undefined ? { count: Number(opts.count) } : {}),
        },
        cmd,
      ),
    );
}
