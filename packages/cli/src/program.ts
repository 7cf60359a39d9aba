/**
 * The commander program. Commands only declare options, call an action and
 * print its result to stdout; progress goes to stderr through the reporter.
 * Built with exitOverride() and configureOutput() so that run() (run.ts) is
 * the one place that turns outcomes into exit codes.
 */
import { Command, Option } from 'commander';
import { VERSION } from '@hanat/core';
import type { ProfileFrom, RegionFrom } from './aws.js';
import { debugFromEnv } from './debug.js';
import type { ActionDeps, AwsFactory, Clock } from './deps.js';
import { deploy } from './deploy.js';
import { destroy } from './destroy.js';
import { failover } from './failover.js';
import { deployJson, outputsTable, palette, stderrReporter, useColor } from './format.js';
import { failoverJson, failoverText, statusJson, statusTable, watchJsonLine, watchScreen } from './format-nat.js';
import { DEFAULT_WATCH_INTERVAL_S, MIN_WATCH_INTERVAL_S, parseWatchInterval, status, statusFailure, watchStatus, type StatusResult } from './status.js';
import { template } from './template.js';
import { DEFAULT_INSTANCE_TYPE, DEFAULT_TEMPLATE_OPTIONS, MAX_AZS, MIN_AZS, type TemplateOptions } from './template/render.js';
import { UsageError } from './errors.js';
import { parseAzs } from './validate.js';

export interface ProgramDeps {
  aws: AwsFactory;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  stdinIsTTY: boolean;
  stderrIsTTY: boolean;
  /** Whether stdout is a terminal (`status --watch` redraws in place there); false when left out. */
  stdoutIsTTY?: boolean;
  env: Readonly<Record<string, string | undefined>>;
  confirm: (question: string, signal: AbortSignal) => Promise<boolean>;
  clock: Clock;
  /** Aborted on Ctrl-C (SIGINT). */
  signal: AbortSignal;
  pollIntervalMs?: number;
  /** The template deploy sends; the renderer unless a test injects another. */
  templateBody?: (opts: TemplateOptions) => string;
}

export const DEFAULT_POLL_INTERVAL_MS = 3_000;

export const EXIT_CODES_HELP = `
Exit codes:
  0    success (also: deploy found no changes; destroy found no such stack;
       status: every AZ's traffic flows; status --watch ended by Ctrl-C;
       failover found nothing to do)
  1    the operation failed: the deploy or destroy failed (failed resources and
       their reasons are printed), AWS refused a call, the stack is busy or
       needs "hanat destroy" first, the prompt was answered "no", status
       found an AZ whose traffic does not flow (blackhole, no-route, stale,
       impaired, cannot-forward), failover found no AZ whose NAT can take over or
       stopped part-way (the message says what was written and how to go on)
  2    bad usage or input: a bad flag value, a key pair or AMI that does not
       exist in the region, an AMI that does not fit the instance type, more
       --azs than the region has or an instance type one of them does not
       offer, no region, a profile that does not exist, rejected credentials,
       no --yes without a terminal, a stack that does not exist (status,
       failover) or that hanat did not create, an AZ the stack does not have,
       a failover --to whose NAT does not run, cannot forward or is being
       replaced, or whose own tables are pinned away
  70   internal error: a bug in hanat (please report it)
  130  interrupted (Ctrl-C): hanat stops watching, the stack operation goes on;
       a failover interrupted part-way says what it wrote and how to go on`;

const EXAMPLES = `
Examples:
  $ hanat template > hanat.json                   # the default template (3 AZs)
  $ hanat template --azs 2 --no-eip               # 2 AZs, no Elastic IPs
  $ hanat deploy --name prod-vpc --cidr-prefix 10.20 --region eu-west-1 --dry-run
  $ hanat deploy --name prod-vpc --cidr-prefix 10.20 --region eu-west-1 --yes --json | jq .outputs
  $ hanat status --name prod-vpc --region eu-west-1   # which NAT serves which AZ
  $ hanat status --name prod-vpc --json | jq '.azs[] | {az, verdict}'
  $ hanat failover --name prod-vpc --az eu-west-1a --yes   # to the next AZ with a running NAT
  $ hanat failover --name prod-vpc --az eu-west-1a --restore --yes
  $ hanat destroy --name prod-vpc --region eu-west-1`;

type Globals = { debug?: boolean; color?: 'auto' | 'always' | 'never' };

/** Whether --region and --profile were given as flags or read from AWS_REGION / AWS_PROFILE, for messages. */
function sources(cmd: Command): { regionFrom: RegionFrom; profileFrom: ProfileFrom } {
  return {
    regionFrom: cmd.getOptionValueSource('region') === 'env' ? 'AWS_REGION' : '--region',
    profileFrom: cmd.getOptionValueSource('profile') === 'env' ? 'AWS_PROFILE' : '--profile',
  };
}

/**
 * Options a command cannot run without, checked by the preAction hook of
 * buildProgram. Not commander's requiredOption(): commander checks those
 * before it looks for unknown options, so a typo (`--nmae lab`) was reported
 * as a missing `--name`, hiding the typo and commander's did-you-mean.
 */
const REQUIRED = new WeakSet<Option>();

function required(flags: string, description: string): Option {
  const option = new Option(flags, description);
  REQUIRED.add(option);
  return option;
}

/** Refuses, as commander words it (exit 2), a command run without one of its required options. */
function checkRequired(cmd: Command): void {
  for (const option of cmd.options) {
    if (REQUIRED.has(option) && cmd.getOptionValue(option.attributeName()) === undefined) {
      cmd.error(`error: required option '${option.flags}' not specified`, { code: 'commander.missingMandatoryOptionValue' });
    }
  }
}

function azsOption(): Option {
  return new Option('--azs <n>', `Availability Zones to use, ${MIN_AZS} to ${MAX_AZS}`)
    .default(DEFAULT_TEMPLATE_OPTIONS.azs)
    .argParser((v: string) => parseAzs(v));
}

export function buildProgram(deps: ProgramDeps): Command {
  const program = new Command('hanat');

  // Not commander's Option.env(): that turns a boolean flag on for any value, HANAT_DEBUG=0 included.
  const debugOn = (globals: Globals): boolean => Boolean(globals.debug) || debugFromEnv(deps.env.HANAT_DEBUG);

  const actionDeps = (globals: Globals): ActionDeps => {
    const color = useColor(globals.color ?? 'auto', deps.stderrIsTTY, deps.env);
    return {
      aws: deps.aws,
      reporter: stderrReporter(deps.stderr, palette(color)),
      clock: deps.clock,
      signal: deps.signal,
      interactive: deps.stdinIsTTY && deps.stderrIsTTY,
      confirm: deps.confirm,
      env: deps.env,
      pollIntervalMs: deps.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    };
  };

  program
    .description('Highly available NAT instances for AWS VPCs: render, deploy and destroy the CloudFormation stack, see which NAT serves which AZ, and move an AZ\'s traffic by hand.')
    .version(VERSION, '-V, --version', 'print the hanat version')
    .option('--debug', 'print AWS SDK diagnostics and stack traces (also HANAT_DEBUG=1; empty, 0, false or no leave it off)')
    .addOption(new Option('--color <when>', 'colour on stderr').choices(['auto', 'always', 'never']).default('auto'))
    .showHelpAfterError('(run with --help for usage)')
    // Runs after commander has refused unknown options (with its did-you-mean), before the action.
    .hook('preAction', (_program, actionCommand) => checkRequired(actionCommand))
    .exitOverride()
    .configureOutput({
      writeOut: (s) => deps.stdout(s),
      writeErr: (s) => deps.stderr(s),
    })
    .addHelpText('after', `${EXIT_CODES_HELP}\n${EXAMPLES}\n\nResults go to stdout; progress and diagnostics to stderr. Colour only on a terminal, never with NO_COLOR.\n`);

  program
    .command('template')
    .description('print the CloudFormation template (JSON) to stdout')
    .addOption(azsOption())
    .option('--cidr-prefix <x.y>', 'default of the CidrPrefix parameter (the VPC is x.y.0.0/16)')
    .option('--no-eip', 'no Elastic IP per AZ (egress addresses change when a NAT is replaced)')
    .action((opts: { azs: number; cidrPrefix?: string; eip: boolean }, cmd: Command) => {
      deps.stdout(template(opts, actionDeps(cmd.optsWithGlobals<Globals>())));
    });

  program
    .command('deploy')
    .description('create or update the stack through a change set, following its events')
    .addOption(required('--name <stack>', 'CloudFormation stack name (also the VPC name)'))
    .addOption(required('--cidr-prefix <x.y>', 'first two octets of the VPC range: 10.20 gives 10.20.0.0/16'))
    .option('--key <keypair>', 'EC2 key pair for the NAT instances (default: none)')
    .option('--ami <ami-id|ssm-parameter>', 'NAT image: an AMI id, or an SSM parameter holding one (default: /hanat/ami/<arch of --instance-type>)')
    .addOption(azsOption())
    .addOption(new Option('--instance-type <type>', 'NAT instance type; its family decides arm64 or x86_64').default(DEFAULT_INSTANCE_TYPE))
    .option('--no-eip', 'no Elastic IP per AZ (egress addresses change when a NAT is replaced)')
    .option(
      '--tag <key=value>',
      'stack tag, repeatable; CloudFormation passes it to the resources and the NATs, so keys are letters, digits and + - = . , _ : @ only',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .addOption(new Option('--region <region>', 'AWS region (else AWS_DEFAULT_REGION or the profile)').env('AWS_REGION'))
    .addOption(new Option('--profile <profile>', 'AWS profile from ~/.aws/config or ~/.aws/credentials').env('AWS_PROFILE'))
    .option('-y, --yes', 'deploy without asking (required when there is no terminal)')
    .option('--dry-run', 'show the changes, then delete the change set; changes nothing, so it needs no --yes (and accepts one)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText(
      'after',
      `
Checks every flag before calling AWS, then that the key pair and the AMI exist
in the region and that the AMI's architecture fits the instance type.
Flags left out take their defaults, on updates too: deploy is declarative
(an update without --tag removes the stack tags given before, and says so).
Ctrl-C while the stack changes stops watching (exit 130) and leaves the stack
to CloudFormation; see docs/cli.md for how to watch it again.`,
    )
    .action(async (opts: Parameters<typeof deploy>[0] & { json?: boolean }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<Globals>();
      const d = actionDeps(globals);
      const result = await deploy({ ...opts, ...sources(cmd), debug: debugOn(globals) }, { ...d, templateBody: deps.templateBody });
      if (result.outcome === 'created' || result.outcome === 'updated') {
        d.reporter.step(`Stack ${result.stack} ${result.outcome} in ${result.region} (${result.status}).`);
      }
      if (opts.json) deps.stdout(deployJson(result));
      else if (result.outcome !== 'dry-run') deps.stdout(outputsTable(result.outputs));
    });

  program
    .command('destroy')
    .description('delete the stack and everything in it, following its events')
    .addOption(required('--name <stack>', 'CloudFormation stack name'))
    .addOption(new Option('--region <region>', 'AWS region (else AWS_DEFAULT_REGION or the profile)').env('AWS_REGION'))
    .addOption(new Option('--profile <profile>', 'AWS profile from ~/.aws/config or ~/.aws/credentials').env('AWS_PROFILE'))
    .option('-y, --yes', 'delete without asking (required when there is no terminal)')
    .addHelpText('after', `\nA stack that does not exist is not an error: destroy says so and exits 0.\nThe Elastic IPs are released with the stack.`)
    .action(async (opts: Parameters<typeof destroy>[0], cmd: Command) => {
      const globals = cmd.optsWithGlobals<Globals>();
      const d = actionDeps(globals);
      const result = await destroy({ ...opts, ...sources(cmd), debug: debugOn(globals) }, d);
      if (result.outcome === 'deleted') d.reporter.step(`Stack ${result.stack} deleted from ${result.region}.`);
    });

  program
    .command('status')
    .description('show which NAT serves which AZ; exit 1 when an AZ cannot reach the internet')
    .addOption(required('--name <stack>', 'CloudFormation stack name'))
    .addOption(new Option('--region <region>', 'AWS region (else AWS_DEFAULT_REGION or the profile)').env('AWS_REGION'))
    .addOption(new Option('--profile <profile>', 'AWS profile from ~/.aws/config or ~/.aws/credentials').env('AWS_PROFILE'))
    .option('--json', 'print the result as JSON on stdout (with --watch: one line per look)')
    .option('--watch', 'look again every --interval seconds until Ctrl-C, redrawing in place on a terminal')
    .addOption(
      new Option('--interval <seconds>', `seconds between two looks of --watch, at least ${MIN_WATCH_INTERVAL_S} (default ${DEFAULT_WATCH_INTERVAL_S})`).argParser(parseWatchInterval),
    )
    .addHelpText(
      'after',
      `
Reads only (Describe calls). One row per AZ's private route table, with a verdict,
and who serves it, since when and why (the hanat:owner, hanat:owner-since and
hanat:owner-reason tags written with each route change):
  ok              the AZ's own running NAT serves it
  TAKEOVER        another AZ's running NAT serves it, since when, and why the AZ's
                  own NAT failed: peer down (no heartbeats, and another NAT missed
                  it too), stepped aside (failed its own checks), EC2 says not
                  running, or impaired; or it handed over as it shut down
  PINNED          hanat failover pinned it to another AZ (hanat:override)
  BLACKHOLE       its route points at a NAT that is gone or stopped
  NO-ROUTE        it has no 0.0.0.0/0 route
  STALE           its route points at something that is not a running NAT of the stack
  IMPAIRED        its route points at a running NAT whose EC2 status checks fail:
                  it crashed in place (EC2 still says running, the route active)
  CANNOT-FORWARD  its route points at a running NAT whose source/dest check is on,
                  so EC2 drops what it would forward (its agent is not running)
Then the NAT instances (state, Auto Scaling health, interface, addresses,
source/dest check) and the Elastic IPs.
Exit 0 when every AZ's traffic flows (ok, TAKEOVER, PINNED); exit 1 when any AZ
is BLACKHOLE, NO-ROUTE, STALE, IMPAIRED or CANNOT-FORWARD (stderr names them and
what to do; stdout still has the table). A NAT that has just crashed in place looks
ok until EC2's status checks fail (they run every minute). A private route table without hanat:az is in
no AZ: stderr warns and names it.

--watch looks again every --interval seconds (default ${DEFAULT_WATCH_INTERVAL_S}) until Ctrl-C, which
exits 0. On a terminal it redraws in place; otherwise it prints each look after the
last (with --json: one JSON document per line). The stack is looked up once; each
later look makes 4 EC2 Describe calls and 1 Auto Scaling call for a healthy stack.
The default keeps that to 1 % of what EC2 refills each Describe action's bucket
with (20 a second), which every agent of every stack in the account and region
shares, and needs most during an AZ outage, just when you watch.
A look that fails is shown, and the watch goes on; degraded AZs do not end it.

Examples:
  $ hanat status --name prod-vpc --region eu-west-1
  $ hanat status --name prod-vpc --watch                 # redraws every ${DEFAULT_WATCH_INTERVAL_S} s; Ctrl-C stops
  $ hanat status --name prod-vpc --json | jq -r '.azs[] | "\\(.az) \\(.verdict) \\(.reason)"'`,
    )
    .action(async (opts: Parameters<typeof status>[0] & { json?: boolean; watch?: boolean; interval?: number }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<Globals>();
      const d = actionDeps(globals);
      const target = { ...opts, ...sources(cmd), debug: debugOn(globals) };
      if (opts.interval !== undefined && !opts.watch) throw new UsageError(`--interval ${opts.interval} needs --watch: without it, hanat status looks once.`);
      if (opts.watch) {
        const intervalS = opts.interval ?? DEFAULT_WATCH_INTERVAL_S;
        const tty = deps.stdoutIsTTY ?? false;
        const view = { intervalS, tty, palette: palette(useColor(globals.color ?? 'auto', tty, deps.env)) };
        let last: StatusResult | undefined;
        for await (const frame of watchStatus({ ...target, intervalMs: intervalS * 1000 }, d)) {
          deps.stdout(opts.json ? watchJsonLine(frame) : watchScreen(frame, last, view, last === undefined && frame.result !== undefined));
          last = frame.result ?? last;
        }
        return;
      }
      const result = await status(target, d);
      deps.stdout(opts.json ? statusJson(result) : statusTable(result));
      const failure = statusFailure(result);
      if (failure) throw failure;
    });

  program
    .command('failover')
    .description("move an AZ's internet traffic to another AZ's NAT by hand, or undo that with --restore")
    .addOption(required('--name <stack>', 'CloudFormation stack name'))
    .addOption(required('--az <az>', 'the AZ whose private routes move (or, with --restore, return)'))
    .addOption(
      new Option('--to <az>', 'the AZ whose NAT takes them (default: the next AZ, alphabetically and wrapping around, whose NAT can serve it)').conflicts('restore'),
    )
    .option('--restore', "remove the pin: the AZ's own NAT takes its routes back at its next route check")
    .addOption(new Option('--region <region>', 'AWS region (else AWS_DEFAULT_REGION or the profile)').env('AWS_REGION'))
    .addOption(new Option('--profile <profile>', 'AWS profile from ~/.aws/config or ~/.aws/credentials').env('AWS_PROFILE'))
    .option('-y, --yes', 'change routes without asking (required when there is no terminal)')
    .option('--json', 'print the result as JSON on stdout')
    .addHelpText(
      'after',
      `
Failover pins the AZ's private route tables to the other AZ (tag hanat:override),
then points their 0.0.0.0/0 at that AZ's NAT, then records it (hanat:owner,
hanat:owner-since). The agents leave a pinned table alone, so it stays until
--restore; this works when every agent is dead. Moving traffic breaks the
connections open through the old NAT (new public address, no connection state).
Without --to, the target is the next AZ (alphabetically, wrapping around) whose
NAT runs, is HEALTHY and InService in Auto Scaling (or in no group), has
source/dest check off, and whose own tables are not pinned away. A --to AZ is
refused, before any change, when its NAT is not running, has source/dest check
on or is UNHEALTHY/Terminating, or its own tables are pinned away (restore it
first). Running it again changes nothing and says so; a failover that stopped
part-way says what it wrote, and running it again finishes it.
--restore only removes the pin: the AZ's own NAT takes the routes back at its
next route check (within 30 s), after its own checks; hanat status shows when.

Examples:
  $ hanat failover --name prod-vpc --az eu-west-1a                 # asks, then moves to eu-west-1b
  $ hanat failover --name prod-vpc --az eu-west-1a --to eu-west-1c --yes
  $ hanat failover --name prod-vpc --az eu-west-1a --restore --yes`,
    )
    .action(async (opts: Parameters<typeof failover>[0] & { json?: boolean }, cmd: Command) => {
      const globals = cmd.optsWithGlobals<Globals>();
      const result = await failover({ ...opts, ...sources(cmd), debug: debugOn(globals) }, actionDeps(globals));
      deps.stdout(opts.json ? failoverJson(result) : failoverText(result));
    });

  return program;
}
