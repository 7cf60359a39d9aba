/**
 * The lab's wiring (data plane + an emulator + admin endpoint) with a scripted stand-in
 * for the emulator: faults resolve "the NAT of an AZ", a kill takes the instance down in
 * the namespaces and in EC2, recovery is measured from the probes, and the admin endpoint
 * serves status and faults only to token holders.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import type { InstanceLauncher, NetworkSnapshot } from '../src/contract.js';
import { adminRequest } from '../src/dataplane/admin.js';
import { renderStatus } from '../src/dataplane/cli-support.js';
import { findLab } from '../src/dataplane/client.js';
import { execCommand } from '../src/dataplane/exec.js';
import type { FaultResult, LabEmulator, LabStatus } from '../src/dataplane/lab.js';
import { DataPlane } from '../src/dataplane/dataplane.js';
import { Lab } from '../src/dataplane/lab.js';
import { namespacePids } from '../src/dataplane/processes.js';
import { FakeView, buildWorkers } from './dataplane-helpers.js';

const AZ = 'lab-1a';
const NATS = [
  { id: 'i-0000000000000000a', ip: '10.0.0.10', pub: '198.18.1.1', eni: 'eni-a', mac: '02:00:00:00:01:0a' },
  { id: 'i-0000000000000000b', ip: '10.0.0.11', pub: '198.18.1.2', eni: 'eni-b', mac: '02:00:00:00:01:0b' },
] as const;

function world(): NetworkSnapshot {
  return {
    version: 1,
    vpcs: [{ vpcId: 'vpc-1', cidrs: ['10.0.0.0/16'] }],
    subnets: [
      { subnetId: 'subnet-pub', vpcId: 'vpc-1', cidr: '10.0.0.0/24', az: AZ, routeTableId: 'rtb-pub', network: 'public' },
      { subnetId: 'subnet-priv', vpcId: 'vpc-1', cidr: '10.0.10.0/24', az: AZ, routeTableId: 'rtb-priv', network: 'private' },
    ],
    routeTables: [
      { routeTableId: 'rtb-pub', vpcId: 'vpc-1', routes: [{ destinationCidr: '10.0.0.0/16', target: { kind: 'local' } }, { destinationCidr: '0.0.0.0/0', target: { kind: 'igw', gatewayId: 'igw-1' } }] },
      { routeTableId: 'rtb-priv', vpcId: 'vpc-1', routes: [{ destinationCidr: '10.0.0.0/16', target: { kind: 'local' } }] },
    ],
    instances: [],
  };
}

/** Plays EC2 and Auto Scaling by hand: the test decides when instances launch and routes move. */
class ScriptedEmulator implements LabEmulator {
  readonly region = 'lab-1';
  readonly network = new FakeView(world());
  readonly blocked = new Set<string>();
  private servers: Server[] = [];
  constructor(readonly launcher: InstanceLauncher) {}

  private serve(): Server {
    const s = createServer((_req, res) => res.end('{}'));
    this.servers.push(s);
    return s;
  }
  listenUnix(path: string): Promise<void> {
    return new Promise((r) => this.serve().listen(path, r));
  }
  listenLoopback(port: number): Promise<number> {
    const s = this.serve();
    return new Promise((r) => s.listen(port, '127.0.0.1', () => r((s.address() as { port: number }).port)));
  }
  close(): Promise<void> {
    for (const s of this.servers) s.close();
    return Promise.resolve();
  }
  async launchNat(n: (typeof NATS)[number]): Promise<void> {
    this.network.update((s) => {
      s.instances.push({ instanceId: n.id, state: 'pending', az: AZ, subnetId: 'subnet-pub', privateIp: n.ip, networkInterfaceId: n.eni, mac: n.mac, sourceDestCheck: false, publicIp: n.pub });
    });
    await this.launcher.launch({ instanceId: n.id, az: AZ, subnetId: 'subnet-pub', subnetCidr: '10.0.0.0/24', privateIp: n.ip, mac: n.mac, networkInterfaceId: n.eni, vpcCidrs: ['10.0.0.0/16'], tags: {} });
    this.network.update((s) => {
      s.instances.find((i) => i.instanceId === n.id)!.state = 'running';
    });
  }
  claimRoute(n: (typeof NATS)[number]): void {
    this.network.update((s) => {
      const t = s.routeTables.find((r) => r.routeTableId === 'rtb-priv')!;
      t.routes = [t.routes[0]!, { destinationCidr: '0.0.0.0/0', target: { kind: 'eni', networkInterfaceId: n.eni, instanceId: n.id, privateIp: n.ip } }];
    });
  }
  async terminateInstance(instanceId: string): Promise<void> {
    await this.launcher.terminate(instanceId);
    this.network.update((s) => {
      s.instances = s.instances.filter((i) => i.instanceId !== instanceId);
      for (const t of s.routeTables) {
        for (const r of t.routes) if (r.target.kind === 'eni' && r.target.instanceId === instanceId) r.target = { kind: 'eni', networkInterfaceId: r.target.networkInterfaceId };
      }
    });
  }
  readonly crashed: string[] = [];
  crashInstance(instanceId: string): void {
    this.crashed.push(instanceId); // EC2 notices nothing: the instance stays running
  }
  setLaunchBlocked(az: string, blocked: boolean): void {
    if (blocked) this.blocked.add(az);
    else this.blocked.delete(az);
  }
  addThrottling(): string {
    return 'fault-1';
  }
  clearThrottling(): void {}
  routeTableTags(id: string): Record<string, string> {
    return id === 'rtb-priv' ? { network: 'private', 'hanat:az': AZ } : { network: 'public' };
  }
  instanceTags(): Record<string, string> {
    return { 'hanat:az': AZ };
  }
}

// Real namespaces and processes: on a loaded 2-core CI machine vitest's 5 s default is too tight.
describe.runIf(requireRoot('lab wiring', ['ip', 'nft', 'iptables']))('lab: data plane + emulator + admin endpoint', { timeout: 30_000 }, () => {
  let dir: string;
  let lab: Lab;
  let em: ScriptedEmulator;
  let downRequested = false;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hanat-lab-wiring-'));
    lab = await Lab.start({
      emulator: (launcher) => (em = new ScriptedEmulator(launcher)),
      runDir: join(dir, 'run'),
      admin: true,
      onDownRequested: () => (downRequested = true),
      dataplane: {
        workerCommand: await buildWorkers(),
        stateDir: join(dir, 'state'),
        // A shell with a child, as the image's agent runs under systemd (and the benches' under a
        // restart wrapper): a kill leaves the child an orphan for the machine's init to reap.
        agentCommand: ['sh', '-c', 'sysctl -qw net.ipv4.ip_forward=1 && iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE && sleep infinity & wait'],
        terminateGraceMs: 500,
        probe: { intervalMs: 100, timeoutMs: 400 },
      },
    });
    await em.launchNat(NATS[0]);
    em.claimRoute(NATS[0]);
    await lab.dataplane.probes.waitFor((_h, r) => r.answer === NATS[0].pub, 5_000, 'traffic through the first NAT');
  }, 60_000);

  afterAll(async () => {
    await lab?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('publishes itself in the state file, and its admin endpoint refuses callers without the token', async () => {
    const found = findLab(join(dir, 'state'), lab.prefix);
    expect(found.apiEndpoint).toBe(lab.apiEndpoint);
    await expect(adminRequest({ url: found.admin.url, token: 'wrong' }, 'GET', '/status')).rejects.toMatchObject({ status: 401 });
    const status = await adminRequest<LabStatus>(found.admin, 'GET', '/status');
    expect(status.routeTables.find((t) => t.routeTableId === 'rtb-priv')).toMatchObject({ az: AZ, defaultRoute: `eni-a (${NATS[0].id})`, via: NATS[0].id });
    expect(status.instances).toEqual([expect.objectContaining({ instanceId: NATS[0].id, state: 'running', namespace: lab.dataplane.names.instance(NATS[0].id) })]);
    expect(status.hosts).toEqual([expect.objectContaining({ az: AZ, ip: '10.0.10.254', tcp: expect.objectContaining({ ok: true, answer: NATS[0].pub }) })]);
  });

  it('never shows a host as fine once its prober has gone quiet, in the status and its text', async () => {
    const admin = findLab(join(dir, 'state'), lab.prefix).admin;
    const host = lab.dataplane.hosts()[0]!;
    const hostLine = (st: LabStatus) => renderStatus(st).split('\n').find((l) => l.includes(host.ip)) ?? '';
    expect(hostLine(await adminRequest<LabStatus>(admin, 'GET', '/status'))).toContain('tcp ok via');
    // The prober stops (a stuck process, a frozen namespace): its last result said ok.
    const pids = await namespacePids(execCommand, host.ns);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) process.kill(pid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, lab.dataplane.probeQuietLimitMs + 500));
      const status = await adminRequest<LabStatus>(admin, 'GET', '/status');
      const h = status.hosts.find((x) => x.id === host.id)!;
      expect(h.tcp).toMatchObject({ ok: false, stale: true, lastError: expect.stringContaining('the prober is stopped or stuck') });
      expect(h.udp).toMatchObject({ ok: false, stale: true });
      expect(hostLine(status)).not.toContain(' ok ');
      expect(hostLine(status)).toContain('tcp FAILING');
    } finally {
      for (const pid of pids) process.kill(pid, 'SIGCONT');
    }
    // Once it runs again, so does the verdict.
    await lab.dataplane.probes.waitFor((id, r) => id === host.id && r.ok && r.t > Date.now() - 500, 5_000, 'fresh probe results');
    expect((await adminRequest<LabStatus>(admin, 'GET', '/status')).hosts.find((x) => x.id === host.id)!.tcp).toMatchObject({ ok: true });
  });

  it('rejects a fault against an instance or AZ that does not exist, naming it', async () => {
    const admin = findLab(join(dir, 'state'), lab.prefix).admin;
    await expect(adminRequest(admin, 'POST', '/fault', { kind: 'kill', target: 'lab-1z' })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('"lab-1z"') });
    await expect(adminRequest(admin, 'POST', '/fault', { kind: 'melt', target: AZ })).rejects.toMatchObject({ status: 400 });
  });

  it('kills the NAT of an AZ and measures the outage until a replacement carries the traffic', async () => {
    const admin = findLab(join(dir, 'state'), lab.prefix).admin;
    const killed = await adminRequest<FaultResult>(admin, 'POST', '/fault', { kind: 'kill', target: AZ });
    expect(killed.instances).toEqual([NATS[0].id]);
    expect(killed.affectedHosts).toEqual(['host-subnet-priv']);
    expect(await lab.dataplane.namespaces()).not.toContain(lab.dataplane.names.instance(NATS[0].id));
    const recovery = lab.waitForRecovery(killed.affectedHosts, killed.at, 20_000);
    await new Promise((r) => setTimeout(r, 600)); // the AZ is down for a while
    await em.launchNat(NATS[1]);
    em.claimRoute(NATS[1]);
    const outages = await recovery;
    expect(outages.map((o) => o.proto).sort()).toEqual(['tcp', 'udp']);
    for (const o of outages) {
      // A hardware failure stops forwarding at once: the first probe sent after the kill fails
      // (100 ms interval), not only once the kernel gets round to freeing the namespace.
      expect(o.start - killed.at, `${o.proto} window opened ${o.start - killed.at} ms after the kill`).toBeLessThanOrEqual(250);
      expect(o.outageMs).toBeGreaterThanOrEqual(500);
      expect(o.outageMs).toBeLessThan(10_000);
      expect(o.answerBefore).toBe(NATS[0].pub);
      expect(o.answerAfter).toBe(NATS[1].pub);
    }
  });

  it('applies and lifts gray failure and AZ launch blocks', async () => {
    const admin = findLab(join(dir, 'state'), lab.prefix).admin;
    await adminRequest(admin, 'POST', '/fault', { kind: 'gray', target: AZ });
    await lab.dataplane.probes.waitFor((_h, r) => !r.ok, 5_000, 'probes failing under gray failure');
    expect((await adminRequest<LabStatus>(admin, 'GET', '/status')).faults.gray).toEqual([NATS[1].id]);
    await adminRequest(admin, 'POST', '/fault', { kind: 'gray', target: AZ, off: true });
    await lab.dataplane.probes.waitFor((_h, r) => r.ok, 5_000, 'probes back after gray failure');
    await adminRequest(admin, 'POST', '/fault', { kind: 'az-launch', az: AZ });
    expect(em.blocked.has(AZ)).toBe(true);
  });

  it('crashes the NAT of an AZ in place: nothing gets through, its processes are frozen, its namespace and EC2 state stay', async () => {
    const admin = findLab(join(dir, 'state'), lab.prefix).admin;
    const id = NATS[1].id;
    const ns = lab.dataplane.names.instance(id);
    const agentPid = lab.dataplane.instances().find((i) => i.instanceId === id)!.agentPid!;
    const crashed = await adminRequest<FaultResult>(admin, 'POST', '/fault', { kind: 'crash', target: AZ });
    expect(crashed).toMatchObject({ fault: 'crash', instances: [id], affectedHosts: ['host-subnet-priv'] });
    expect(em.crashed).toEqual([id]);
    // The NAT's kernel would still forward; only the router's drop stops the private host.
    const since = Date.now();
    await lab.dataplane.probes.waitFor((_h, r) => !r.ok && r.t >= since, 5_000, 'probes failing after the crash');
    expect(await lab.dataplane.namespaces()).toContain(ns);
    expect(readFileSync(`/proc/${agentPid}/stat`, 'utf8').split(' ')[2]).toBe('T'); // stopped, not gone
    const status = await adminRequest<LabStatus>(admin, 'GET', '/status');
    expect(status.faults.crashed).toEqual([id]);
    expect(status.instances.find((i) => i.instanceId === id)).toMatchObject({ state: 'running' });
    // Nothing in the namespace answers, not even the instance's own address.
    const ping = spawnSync('ip', ['netns', 'exec', lab.dataplane.names.router, 'ping', '-c', '1', '-W', '1', NATS[1].ip]);
    expect(ping.status).not.toBe(0);
    await expect(adminRequest(admin, 'POST', '/fault', { kind: 'crash', target: id })).rejects.toMatchObject({ status: 400, message: expect.stringContaining('already crashed') });
    // Terminating a hung instance does not wait for a shutdown it cannot run, and lets nothing through on the way.
    const answered: number[] = [];
    const onResult = (_h: string, r: { ok: boolean; t: number }) => {
      if (r.ok) answered.push(r.t);
    };
    lab.dataplane.probes.on('result', onResult);
    const t0 = Date.now();
    await lab.dataplane.terminate(id);
    expect(Date.now() - t0).toBeLessThan(450);
    await new Promise((r) => setTimeout(r, 1_500)); // past the probe timeout
    lab.dataplane.probes.off('result', onResult);
    expect(answered).toEqual([]);
    expect(await lab.dataplane.namespaces()).not.toContain(ns);
    expect((await adminRequest<LabStatus>(admin, 'GET', '/status')).faults.crashed).toEqual([]);
  });

  it('passes down requests on', async () => {
    const admin = findLab(join(dir, 'state'), lab.prefix).admin;
    await adminRequest(admin, 'POST', '/down');
    await new Promise((r) => setImmediate(r));
    expect(downRequested).toBe(true);
  });
});

describe.runIf(requireRoot('lab worker output', ['ip', 'nft']))('lab workers', { timeout: 30_000 }, () => {
  it("turn what a worker writes to stderr into JSON log lines (a detached lab's lab.log holds nothing else)", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hanat-lab-stderr-'));
    const logged: { event: string; fields?: Record<string, unknown> }[] = [];
    const worker = await buildWorkers();
    let dp: DataPlane | undefined;
    try {
      dp = await DataPlane.create({
        // Every worker says something on stderr before it starts, as a crashing one would.
        workerCommand: ['sh', '-c', 'echo "worker says: $1" >&2; exec "$@"', 'sh', ...worker],
        apiSocketPath: join(dir, 'emulator.sock'),
        runDir: join(dir, 'run'),
        stateDir: join(dir, 'state'),
        probe: false,
        logger: { info: (event, fields) => logged.push({ event, ...(fields ? { fields } : {}) }), warn: (event, fields) => logged.push({ event, ...(fields ? { fields } : {}) }) },
      });
      const deadline = Date.now() + 5_000;
      while (logged.filter((l) => l.event === 'dataplane.worker_stderr').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(logged.filter((l) => l.event === 'dataplane.worker_stderr').map((l) => l.fields)).toEqual(
        expect.arrayContaining([
          { label: 'internet-echo', line: `worker says: ${worker[0]}` },
          { label: 'imds-api-proxy', line: `worker says: ${worker[0]}` },
        ]),
      );
    } finally {
      await dp?.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
