/** `hanat-lab status`: route tables and their owners, instances, private hosts' probes, faults. */
import type { Command } from 'commander';
import { adminRequest } from '../dataplane/admin.js';
import { envExports, labFor, renderStatus, type LabCommandDeps } from '../dataplane/cli-support.js';
import type { LabStatus } from '../dataplane/lab.js';
import { labCall } from './probe.js';

export async function statusAction(opts: { lab?: string }, deps: LabCommandDeps): Promise<LabStatus> {
  return labCall(() => adminRequest<LabStatus>(labFor(deps, opts.lab).admin, 'GET', '/status'));
}

export function registerStatus(program: Command, deps: LabCommandDeps): void {
  program
    .command('status')
    .description("show the running lab: each route table's default route and owner, instances, private hosts' probes, faults")
    .option('--lab <prefix>', 'which lab, when several run')
    .option('--json', 'print the status as JSON')
    .option('--env', 'print the AWS environment of the lab as shell exports')
    .action(async (opts: { lab?: string; json?: boolean; env?: boolean }) => {
      const status = await statusAction(opts, deps);
      if (opts.env) deps.stdout(envExports(status.apiEndpoint, status.region));
      else deps.stdout(opts.json ? JSON.stringify(status, null, 2) + '\n' : renderStatus(status));
    });
}
