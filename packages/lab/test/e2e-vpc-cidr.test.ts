/**
 * A VPC CIDR block added after deploy (issue 9, item 7; docs/agent.md "VPC CIDR blocks
 * added later"). The NAT's security group admits what the template gave it, the VPC's
 * first range; the lab enforces security group ingress (EMULATOR.md "Security groups"),
 * so a host in a secondary range is dropped before the NAT sees its packets unless the
 * agent admits the new range. Deploy, associate a second range, add a private subnet in it
 * on an AZ's private route table, and the host there must reach the internet through that
 * AZ's NAT, with no redeploy.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AssociateRouteTableCommand,
  AssociateVpcCidrBlockCommand,
  CreateSubnetCommand,
  DescribeRouteTablesCommand,
  DescribeSecurityGroupsCommand,
  DescribeVpcsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import { hostRoutes } from '../src/cli/probe.js';
import { envExports } from '../src/dataplane/cli-support.js';
import { labEmulator } from '../src/dataplane/emulator-adapter.js';
import { Lab } from '../src/dataplane/lab.js';
import { buildWorkers } from './dataplane-helpers.js';
import { REPO, requireBundles } from './bundle-helpers.js';

const REGION = 'us-east-1';
const STACK = 'e2e-cidr';
const SECONDARY = '10.62.0.0/16';
/** The agent's recheck period here (its minimum); AWS's default is 300 s. */
const RECHECK_S = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.runIf(requireRoot('lab e2e (VPC CIDR added later)', ['ip', 'nft', 'iptables']))('a VPC CIDR block added after deploy', { timeout: 120_000 }, () => {
  let dir: string;
  let lab: Lab;
  let ec2: EC2Client;

  beforeAll(async () => {
    requireBundles('cli', 'agent');
    dir = mkdtempSync(join(tmpdir(), 'hanat-e2e-cidr-'));
    lab = await Lab.start({
      emulator: (launcher) => labEmulator(launcher, { latency: 'zero', bootDelayMs: 1_000, region: REGION }),
      runDir: dir,
      dataplane: {
        workerCommand: await buildWorkers(),
        stateDir: join(dir, 'state'),
        agentCommand: [process.execPath, join(REPO, 'packages/agent/dist/hanat-agent.cjs'), 'run'],
        agentEnv: { HANAT_RECHECK_INTERVAL: String(RECHECK_S), HANAT_HA: '0' },
        terminateGraceMs: 2_000,
        probe: { intervalMs: 200, timeoutMs: 1_000 },
      },
    });
    lab.dataplane.installExitCleanup();
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, NO_COLOR: '1' };
    for (const line of envExports(lab.apiEndpoint, REGION).split('\n')) {
      const set = /^export ([A-Z0-9_]+)=(.*)$/.exec(line);
      if (set) env[set[1]!] = set[2]!;
    }
    ec2 = new EC2Client({
      region: REGION,
      endpoint: lab.apiEndpoint,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! },
    });
    const code = await new Promise<number>((resolve) =>
      execFile(process.execPath, [join(REPO, 'packages/cli/dist/hanat.mjs'), 'deploy', '--name', STACK, '--cidr-prefix', '10.61', '--azs', '2', '--yes'], { env }, (err) =>
        resolve(err ? Number(err.code ?? 1) : 0),
      ),
    );
    expect(code).toBe(0);
    const t0 = Date.now();
    while (!(hostRoutes(lab.status()).length === 4 && hostRoutes(lab.status()).every((h) => h.ownAz))) {
      if (Date.now() - t0 > 60_000) throw new Error('hosts never reached the internet through their own NAT');
      await sleep(200);
    }
  }, 120_000);

  afterAll(async () => {
    ec2?.destroy();
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('a host in a secondary CIDR reaches the internet through its AZ NAT, without a redeploy', async () => {
    const stackFilter = { Name: `tag:hanat:stack`, Values: [STACK] };
    const vpc = (await ec2.send(new DescribeVpcsCommand({ Filters: [stackFilter] }))).Vpcs![0]!;
    const az = [...new Set(lab.status().hosts.map((h) => h.az))].sort()[0]!;
    const table = (
      await ec2.send(new DescribeRouteTablesCommand({ Filters: [stackFilter, { Name: 'tag:network', Values: ['private'] }, { Name: 'tag:hanat:az', Values: [az] }] }))
    ).RouteTables![0]!;

    const assoc = await ec2.send(new AssociateVpcCidrBlockCommand({ VpcId: vpc.VpcId, CidrBlock: SECONDARY }));
    expect(assoc.CidrBlockAssociation?.CidrBlockState?.State).toBe('associated');
    const vpcAfter = (await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpc.VpcId!] }))).Vpcs![0]!;
    expect(vpcAfter.CidrBlockAssociationSet?.map((c) => c.CidrBlock)).toEqual(['10.61.0.0/16', SECONDARY]);

    // The lab puts a probing host in every subnet tagged network=private.
    const subnet = (
      await ec2.send(
        new CreateSubnetCommand({
          VpcId: vpc.VpcId,
          CidrBlock: '10.62.10.0/24',
          AvailabilityZone: az,
          TagSpecifications: [{ ResourceType: 'subnet', Tags: [{ Key: 'network', Value: 'private' }, { Key: 'Name', Value: 'added-later' }] }],
        }),
      )
    ).Subnet!;
    await ec2.send(new AssociateRouteTableCommand({ RouteTableId: table.RouteTableId, SubnetId: subnet.SubnetId }));
    const t0 = Date.now();

    const nat = lab.status().instances.find((i) => i.az === az && i.state === 'running')!;
    const newHost = () => hostRoutes(lab.status()).find((h) => h.subnetId === subnet.SubnetId);
    // The agent notices the range at its next recheck (≤ RECHECK_S), then admits it.
    while (!newHost()?.ownAz) {
      if (Date.now() - t0 > (RECHECK_S + 30) * 1000) {
        throw new Error(`the host in ${SECONDARY} never reached the internet through ${nat.instanceId}: ${JSON.stringify(newHost())}`);
      }
      await sleep(250);
    }
    console.log(`secondary CIDR: host ${newHost()!.ip} reached the internet via ${newHost()!.nat?.publicIp} ${Date.now() - t0} ms after its subnet was added`);
    expect(newHost()!.nat?.instanceId).toBe(nat.instanceId);

    // The NAT's own security group now admits the range: the agent's doing, not the template's.
    const groups = (await ec2.send(new DescribeSecurityGroupsCommand({ Filters: [stackFilter] }))).SecurityGroups!;
    const admitted = groups.flatMap((g) => (g.IpPermissions ?? []).filter((p) => p.IpProtocol === '-1').flatMap((p) => (p.IpRanges ?? []).map((r) => r.CidrIp)));
    expect(admitted).toEqual(expect.arrayContaining(['10.61.0.0/16', SECONDARY]));
    // The hosts of the first range were never cut meanwhile.
    expect(hostRoutes(lab.status()).filter((h) => h.subnetId !== subnet.SubnetId).every((h) => h.ownAz)).toBe(true);
  });
});
