/**
 * Terminating an instance in the lab goes through EC2 shutdown, as on AWS, where the OS shuts
 * down and systemd stops the agent's unit: the instance is `shutting-down` (DescribeInstances),
 * its agent gets SIGTERM, has up to the unit's stop timeout to exit, is SIGKILLed if it has
 * not, and only then is the instance `terminated`.
 *
 * Real namespaces and processes, the real emulator, and a stand-in agent (a shell loop) that
 * either exits on SIGTERM or ignores it. The stop timeout is shortened to 4 s through the lab's
 * setting (the image's, which the lab uses by default, is 30 s: stop-timeout.test.ts).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateSubnetCommand, CreateVpcCommand, DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { labEmulator } from '../src/dataplane/emulator-adapter.js';
import { Lab } from '../src/dataplane/lab.js';
import { LAB_IMAGES } from '../src/emulator/index.js';
import { buildWorkers } from './dataplane-helpers.js';

const REGION = 'us-east-1';
const STOP_TIMEOUT_MS = 4_000;
/** Records each SIGTERM in $HOME/signals; exits on it or carries on, as ON_TERM says. */
const STAND_IN_AGENT = ['sh', '-c', 'trap \'echo TERM >> "$HOME/signals"; [ "$ON_TERM" = ignore ] || exit 0\' TERM; echo up > "$HOME/up"; while :; do sleep 0.05; done'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(requireRoot('lab shutdown', ['ip', 'nft', 'iptables']))('terminating an instance in the lab: EC2 shutdown and the agent\'s stop timeout', { timeout: 60_000 }, () => {
  let dir: string;
  let lab: Lab;
  let ec2: EC2Client;
  const events: { event: string; fields: Record<string, unknown> }[] = [];
  const home = (id: string) => join(dir, 'run', 'instances', id, 'home');

  const state = async (id: string) => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!.State!.Name;
  const until = async (what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
    const t0 = Date.now();
    while (!(await ok())) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
      await sleep(50);
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hanat-lab-shutdown-'));
    const record = (event: string, fields: Record<string, unknown> = {}) => events.push({ event, fields });
    lab = await Lab.start({
      emulator: (launcher) => labEmulator(launcher, { latency: 'zero', bootDelayMs: 0, region: REGION }),
      runDir: join(dir, 'run'),
      logger: { info: record, warn: record },
      dataplane: {
        workerCommand: await buildWorkers(),
        stateDir: join(dir, 'state'),
        agentCommand: STAND_IN_AGENT,
        agentEnv: (spec) => ({ ON_TERM: spec.tags['on-term'] ?? 'exit' }),
        terminateGraceMs: STOP_TIMEOUT_MS,
        probe: false,
      },
    });
    lab.dataplane.installExitCleanup();
    ec2 = new EC2Client({ endpoint: lab.apiEndpoint, region: REGION, credentials: { accessKeyId: 'AKIAHANATLABTEST0000', secretAccessKey: 'hanat-lab-test-secret' }, maxAttempts: 1 });
  }, 60_000);

  afterAll(async () => {
    ec2?.destroy();
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('SIGTERMs each agent while EC2 says shutting-down; one that exits ends the shutdown, one that ignores it is SIGKILLed after the stop timeout', async () => {
    const vpc = (await ec2.send(new CreateVpcCommand({ CidrBlock: '10.0.0.0/16' }))).Vpc!.VpcId!;
    const subnet = (await ec2.send(new CreateSubnetCommand({ VpcId: vpc, CidrBlock: '10.0.0.0/24', AvailabilityZone: `${REGION}a` }))).Subnet!.SubnetId!;
    const run = async (onTerm: 'exit' | 'ignore') =>
      (
        await ec2.send(
          new RunInstancesCommand({
            ImageId: LAB_IMAGES.find((i) => i.architecture === 'arm64')!.id,
            InstanceType: 't4g.nano',
            SubnetId: subnet,
            MinCount: 1,
            MaxCount: 1,
            TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'on-term', Value: onTerm }] }],
          }),
        )
      ).Instances![0]!.InstanceId!;
    const polite = await run('exit');
    const stubborn = await run('ignore');
    await until('both instances running with their agents up', async () => (await state(polite)) === 'running' && (await state(stubborn)) === 'running' && existsSync(join(home(polite), 'up')) && existsSync(join(home(stubborn), 'up')));
    const pid = (id: string) => lab.dataplane.instances().find((i) => i.instanceId === id)?.agentPid;
    const stubbornPid = pid(stubborn)!;
    expect(stubbornPid).toBeGreaterThan(0);

    const t0 = Date.now();
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [polite, stubborn] }));
    expect(await state(polite)).toBe('shutting-down');
    expect(await state(stubborn)).toBe('shutting-down');

    // The agent that exits on SIGTERM ends its instance's shutdown, while the other one's goes on.
    await until('the polite instance terminated', async () => (await state(polite)) === 'terminated');
    const politeDone = Date.now() - t0;
    expect(readFileSync(join(home(polite), 'signals'), 'utf8')).toBe('TERM\n');
    expect(await state(stubborn)).toBe('shutting-down');
    expect(politeDone).toBeLessThan(STOP_TIMEOUT_MS);
    expect(events.find((e) => e.event === 'instance.agent_stopped' && e.fields.instanceId === polite)).toBeDefined();
    expect(events.find((e) => e.event === 'instance.agent_exit' && e.fields.instanceId === polite)?.fields).toMatchObject({ code: 0, signal: null });

    // The one that ignores SIGTERM got it, and is still running until the stop timeout...
    await until('the stubborn agent got SIGTERM', () => existsSync(join(home(stubborn), 'signals')));
    expect(readFileSync(join(home(stubborn), 'signals'), 'utf8')).toBe('TERM\n');
    expect(existsSync(`/proc/${stubbornPid}`)).toBe(true);
    // ...then SIGKILL, and only then terminated.
    await until('the stubborn instance terminated', async () => (await state(stubborn)) === 'terminated', STOP_TIMEOUT_MS + 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(STOP_TIMEOUT_MS);
    expect(events.find((e) => e.event === 'instance.stop_timeout' && e.fields.instanceId === stubborn)?.fields).toMatchObject({ stopTimeoutMs: STOP_TIMEOUT_MS });
    expect(events.find((e) => e.event === 'instance.agent_exit' && e.fields.instanceId === stubborn)?.fields).toMatchObject({ signal: 'SIGKILL' });
    expect(existsSync(`/proc/${stubbornPid}`)).toBe(false);
    expect(events.find((e) => e.event === 'instance.stop_timeout' && e.fields.instanceId === polite)).toBeUndefined();
  });
});
