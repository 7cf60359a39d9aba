/**
 * The data plane against real network namespaces, driven by a fake NetworkView: packets
 * follow the route tables as they change, source/dest check and faults are enforced by the
 * router, the internet sees each NAT's public address, the IMDS/API proxy reaches the
 * emulator's unix socket as the calling instance, and teardown leaves nothing behind.
 */
import { build } from 'esbuild';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders, Server } from 'node:http';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../../test-support/root.js';
import type { LaunchSpec, NetworkSnapshot } from '../src/contract.js';
import { renderHosts } from '../src/dataplane/cli-support.js';
import { DataPlane } from '../src/dataplane/dataplane.js';
import { execCommand } from '../src/dataplane/exec.js';
import { cleanupRun, readRunStates } from '../src/dataplane/state.js';
import { listNamespaces, namespacePids } from '../src/dataplane/processes.js';
import { API_ADDRESS, INTERNET_HOSTS } from '../src/dataplane/topology.js';
import { FakeView, buildWorkers } from './dataplane-helpers.js';

const VPC = 'vpc-lab';
const NAT_A = { id: 'i-0aaaaaaaaaaaaaaa1', ip: '10.0.0.5', pub: '198.18.0.10', eni: 'eni-a', mac: '02:00:00:00:00:0a' };
const NAT_B = { id: 'i-0bbbbbbbbbbbbbbb2', ip: '10.0.0.6', pub: '198.18.0.11', eni: 'eni-b', mac: '02:00:00:00:00:0b' };
const HOST = 'host-subnet-priv';

function world(): NetworkSnapshot {
  return {
    version: 1,
    vpcs: [{ vpcId: VPC, cidrs: ['10.0.0.0/16'] }],
    subnets: [
      { subnetId: 'subnet-pub', vpcId: VPC, cidr: '10.0.0.0/24', az: 'lab-1a', routeTableId: 'rtb-pub', network: 'public' },
      { subnetId: 'subnet-priv', vpcId: VPC, cidr: '10.0.10.0/24', az: 'lab-1a', routeTableId: 'rtb-priv', network: 'private' },
    ],
    routeTables: [
      {
        routeTableId: 'rtb-pub',
        vpcId: VPC,
        routes: [
          { destinationCidr: '10.0.0.0/16', target: { kind: 'local' } },
          { destinationCidr: '0.0.0.0/0', target: { kind: 'igw', gatewayId: 'igw-1' } },
        ],
      },
      { routeTableId: 'rtb-priv', vpcId: VPC, routes: [{ destinationCidr: '10.0.0.0/16', target: { kind: 'local' } }] },
    ],
    instances: [NAT_A, NAT_B].map((n) => ({
      instanceId: n.id,
      state: 'running' as const,
      az: 'lab-1a',
      subnetId: 'subnet-pub',
      privateIp: n.ip,
      networkInterfaceId: n.eni,
      mac: n.mac,
      sourceDestCheck: false,
      publicIp: n.pub,
    })),
  };
}

function spec(n: typeof NAT_A): LaunchSpec {
  return { instanceId: n.id, az: 'lab-1a', subnetId: 'subnet-pub', subnetCidr: '10.0.0.0/24', privateIp: n.ip, mac: n.mac, networkInterfaceId: n.eni, vpcCidrs: ['10.0.0.0/16'], tags: {} };
}

function defaultVia(nat: typeof NAT_A | undefined) {
  return (s: NetworkSnapshot) => {
    const t = s.routeTables.find((r) => r.routeTableId === 'rtb-priv')!;
    t.routes = t.routes.filter((r) => r.destinationCidr !== '0.0.0.0/0');
    t.routes.push({
      destinationCidr: '0.0.0.0/0',
      target: nat ? { kind: 'eni', networkInterfaceId: nat.eni, instanceId: nat.id, privateIp: nat.ip } : { kind: 'blackhole' },
    });
  };
}

function setCheck(instanceId: string, on: boolean) {
  return (s: NetworkSnapshot) => {
    s.instances.find((i) => i.instanceId === instanceId)!.sourceDestCheck = on;
  };
}

/** A stand-in for the agent: makes the namespace a NAT, prints a line, and stays up. */
const STAND_IN_AGENT = ['sh', '-c', 'sysctl -qw net.ipv4.ip_forward=1 && iptables -t nat -A POSTROUTING -o eth0 -j MASQUERADE && echo stand-in agent up && exec sleep infinity'];

// Real namespaces and processes: on a loaded 2-core CI machine vitest's 5 s default is too tight.
describe.runIf(requireRoot('lab dataplane', ['ip', 'nft', 'iptables']))('lab data plane (network namespaces)', { timeout: 30_000 }, () => {
  let dir: string;
  let socketPath: string;
  let server: Server;
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  let dp: DataPlane;
  let view: FakeView;
  let pids: number[] = [];
  const warnings: string[] = [];

  const stateDir = () => join(dir, 'state');
  const inNs = (ns: string, code: string) => execCommand(['ip', 'netns', 'exec', ns, process.execPath, '-e', code]);
  /**
   * Waits for a TCP and a UDP probe from the private host that satisfy `ok`. Both waits
   * start at once: the prober reports a TCP and a UDP result together, so a UDP wait begun
   * after the TCP one resolved would miss a state that lasts only a moment.
   */
  const probesSee = async (what: string, ok: (r: { ok: boolean; answer?: string }) => boolean, timeoutMs = 5_000) => {
    await Promise.all(
      (['tcp', 'udp'] as const).map((proto) => dp.probes.waitFor((h, r) => h === HOST && r.proto === proto && ok(r), timeoutMs, `${proto} probes: ${what}`)),
    );
  };
  /** Resolves right after a periodic re-sync, so the next one is a whole interval away. */
  const afterPeriodicSync = async () => {
    const syncs = dp.stats.syncs;
    const deadline = Date.now() + 5_000;
    while (dp.stats.syncs === syncs) {
      if (Date.now() > deadline) throw new Error('no periodic re-sync within 5 s');
      await new Promise((r) => setTimeout(r, 5));
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hanat-lab-dp-'));
    socketPath = join(dir, 'emulator.sock');
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? '', headers: req.headers });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ url: req.url, source: req.headers['x-hanat-lab-source-ip'] ?? null, claimed: req.headers['x-hanat-lab-instance-id'] ?? null }));
    });
    await new Promise<void>((r) => server.listen(socketPath, r));
    view = new FakeView(world());
    dp = await DataPlane.create({
      workerCommand: await buildWorkers(),
      apiSocketPath: socketPath,
      runDir: join(dir, 'run'),
      stateDir: stateDir(),
      agentCommand: STAND_IN_AGENT,
      terminateGraceMs: 1_000,
      probe: { intervalMs: 100, timeoutMs: 500 },
      logger: { info() {}, warn: (event) => warnings.push(event) },
    });
    dp.attach(view, 1_000); // re-sync (and repair drift) every second
    await dp.launch(spec(NAT_A));
    await dp.launch(spec(NAT_B));
    await dp.synced();
    pids = await dp.processes();
  }, 60_000);

  afterAll(async () => {
    await dp?.destroy();
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('creates a private host per private subnet, at the last usable address, that cannot reach the internet without a route', async () => {
    expect(dp.hosts()).toEqual([expect.objectContaining({ id: HOST, subnetId: 'subnet-priv', az: 'lab-1a', ip: '10.0.10.254', probed: true })]);
    await probesSee('failing without a default route', (r) => !r.ok);
  });

  it('routes the private subnet through the NAT its route table names, and the internet sees that NAT\'s public address', async () => {
    view.update(defaultVia(NAT_A));
    await probesSee('answered by NAT A', (r) => r.answer === NAT_A.pub);
    view.update(defaultVia(NAT_B));
    await probesSee('answered by NAT B', (r) => r.answer === NAT_B.pub);
    view.update(defaultVia(undefined));
    await probesSee('dropped by a blackhole route', (r) => !r.ok);
    view.update(defaultVia(NAT_A));
    await probesSee('answered by NAT A again', (r) => r.answer === NAT_A.pub);
  });

  it('re-syncs the router within 100 ms of every change', async () => {
    const before = dp.stats.latenciesMs.length;
    for (const nat of [NAT_B, NAT_A, undefined, NAT_B, NAT_A]) {
      const version = view.update(defaultVia(nat));
      await dp.synced({ version });
    }
    const measured = dp.stats.latenciesMs.slice(before);
    expect(measured.length).toBeGreaterThanOrEqual(5);
    console.log(`router sync latency (ms): ${measured.join(', ')}`);
    expect(Math.max(...measured)).toBeLessThan(100);
  });

  it('repairs routing changed behind its back at the next periodic re-sync', async () => {
    view.update(defaultVia(NAT_B));
    await probesSee('answered by NAT B', (r) => r.answer === NAT_B.pub);
    const rules = JSON.parse(await execCommand(['ip', '-n', dp.names.router, '-j', 'rule', 'show'])) as { priority: number; iif?: string }[];
    const labRules = rules.filter((r) => r.iif?.startsWith(dp.prefix));
    expect(labRules.length).toBe(3); // two instances and the private host
    // Every lab rule goes, just after a re-sync so that the drop lasts most of an interval:
    // the host's traffic falls to the main table's blackhole.
    await afterPeriodicSync();
    for (const r of labRules) await execCommand(['ip', '-n', dp.names.router, 'rule', 'del', 'pref', String(r.priority)]);
    await probesSee('dropped without the rules', (r) => !r.ok);
    await probesSee('repaired', (r) => r.answer === NAT_B.pub, 5_000);
  });

  it('lets an instance reach the internet with its own public address', async () => {
    const answer = await inNs(dp.names.instance(NAT_B.id), `require('net').connect(7,'198.51.100.10').on('data',d=>process.stdout.write(d))`);
    expect(answer.trim()).toBe(NAT_B.pub);
  });

  it('enforces source/dest check: a NAT with the check on cannot forward', async () => {
    view.update(defaultVia(NAT_A));
    await probesSee('answered by NAT A', (r) => r.answer === NAT_A.pub);
    view.update(setCheck(NAT_A.id, true));
    await probesSee('dropped by the source/dest check', (r) => !r.ok);
    // The instance's own traffic is its own: the check does not stop it.
    const own = await inNs(dp.names.instance(NAT_A.id), `require('net').connect(7,'198.51.100.10').on('data',d=>process.stdout.write(d))`);
    expect(own.trim()).toBe(NAT_A.pub);
    view.update(setCheck(NAT_A.id, false));
    await probesSee('forwarded again', (r) => r.answer === NAT_A.pub);
  });

  it('injects a gray failure, an upstream cut and a partition, and heals them', async () => {
    await dp.setGrayFailure(NAT_A.id, true);
    await probesSee('gray failure', (r) => !r.ok);
    await dp.setGrayFailure(NAT_A.id, false);
    await probesSee('gray failure healed', (r) => r.answer === NAT_A.pub);

    await dp.setUpstreamCut(NAT_A.id, true);
    await probesSee('upstream cut', (r) => !r.ok);
    await dp.setUpstreamCut(NAT_A.id, false);
    await probesSee('upstream restored', (r) => r.answer === NAT_A.pub);

    const reachB = `require('net').connect({port:7,host:'${NAT_B.ip}',timeout:300}).on('connect',()=>{console.log('open');process.exit(0)}).on('error',e=>{console.log(e.code);process.exit(0)}).on('timeout',()=>{console.log('timeout');process.exit(0)})`;
    // Nothing listens on B:7, so a reachable B refuses (RST); a partitioned one is silent.
    expect((await inNs(dp.names.instance(NAT_A.id), reachB)).trim()).toBe('ECONNREFUSED');
    await dp.setPartition(NAT_A.id, NAT_B.id, true);
    expect((await inNs(dp.names.instance(NAT_A.id), reachB)).trim()).toBe('timeout');
    await dp.setPartition(NAT_A.id, NAT_B.id, false);
    expect((await inNs(dp.names.instance(NAT_A.id), reachB)).trim()).toBe('ECONNREFUSED');
  });

  it('proxies IMDS and the API to the emulator socket with the caller\'s address, and drops forged identity headers', async () => {
    const get = (url: string) =>
      `fetch('${url}',{headers:{'x-hanat-lab-instance-id':'i-forged','x-hanat-lab-source-ip':'10.9.9.9'}}).then(r=>r.text()).then(t=>process.stdout.write(t))`;
    const imds = JSON.parse(await inNs(dp.names.instance(NAT_B.id), get('http://169.254.169.254/latest/meta-data/instance-id')));
    expect(imds).toEqual({ url: '/latest/meta-data/instance-id', source: NAT_B.ip, claimed: null });
    const api = JSON.parse(await inNs(dp.names.instance(NAT_A.id), get(`http://${API_ADDRESS}/?Action=DescribeRouteTables`)));
    expect(api).toEqual({ url: '/?Action=DescribeRouteTables', source: NAT_A.ip, claimed: null });
  });

  it('runs the agent command in the instance namespace with only PATH, HOME, AWS_ENDPOINT_URL and a lab probe target, and keeps its log', () => {
    const info = dp.instances().find((i) => i.instanceId === NAT_A.id)!;
    expect(readFileSync(info.logFile, 'utf8')).toContain('stand-in agent up');
    const env = readFileSync(`/proc/${info.agentPid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => kv.split('=')[0]).sort();
    // (PWD is the stand-in shell's own.)
    expect(env.filter((k) => k !== 'PWD')).toEqual(['AWS_ENDPOINT_URL', 'HANAT_PROBE_TARGET', 'HOME', 'LANG', 'PATH']);
    const environ = readFileSync(`/proc/${info.agentPid}/environ`, 'utf8');
    expect(environ).toContain(`AWS_ENDPOINT_URL=http://${API_ADDRESS}`);
    // The agent's upstream probe goes to the lab's internet host, never to a real address.
    expect(environ).toContain(`HANAT_PROBE_TARGET=${INTERNET_HOSTS[0]}:`);
  });

  it('puts no lab link in the root namespace', async () => {
    const links = JSON.parse(await execCommand(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    expect(links.filter((l) => l.ifname.startsWith(dp.prefix))).toEqual([]);
  });

  it('terminates an instance: SIGTERM to its agent, then its namespace and link are gone; twice is fine', async () => {
    const ns = dp.names.instance(NAT_B.id);
    expect(await listNamespaces(execCommand)).toContain(ns);
    await dp.terminate(NAT_B.id);
    await dp.terminate(NAT_B.id);
    expect(await listNamespaces(execCommand)).not.toContain(ns);
    expect(dp.instances().map((i) => i.instanceId)).toEqual([NAT_A.id]);
    // A route to the gone instance now drops.
    view.update(defaultVia(NAT_B));
    await probesSee('dropped: route to a terminated instance', (r) => !r.ok);
  });

  it('removes a private host with its subnet, quietly', async () => {
    const ns = dp.hosts()[0]!.ns;
    const hostPids = await namespacePids(execCommand, ns);
    expect(hostPids.length).toBeGreaterThan(0); // its prober
    warnings.length = 0;
    const version = view.update((s) => {
      s.subnets = s.subnets.filter((x) => x.subnetId !== 'subnet-priv');
    });
    await dp.synced({ version });
    expect(dp.hosts()).toEqual([]);
    expect(await listNamespaces(execCommand)).not.toContain(ns);
    // Once the prober is reaped, the lab has heard of its exit.
    for (const deadline = Date.now() + 5_000; hostPids.some(alive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(hostPids.filter(alive)).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it('probes only from the AZs --probe-azs names: a host elsewhere exists, routes, and runs no prober', async () => {
    const other = await DataPlane.create({ workerCommand: await buildWorkers(), apiSocketPath: socketPath, runDir: join(dir, 'probe-azs'), stateDir: stateDir(), probe: { intervalMs: 100, timeoutMs: 500, azs: ['lab-1b'] } });
    try {
      other.attach(new FakeView(world()), 1_000);
      await other.synced();
      const [host] = other.hosts();
      expect(host).toMatchObject({ id: HOST, az: 'lab-1a', probed: false });
      expect(await namespacePids(execCommand, host!.ns)).toEqual([]);
      await new Promise((r) => setTimeout(r, 300));
      expect(other.probes.status(HOST)).toEqual({});
      // `hanat-lab status` says so, rather than showing it as failing or as never answering.
      expect(renderHosts([{ ...host!, outages: [], answers: [] }])).toMatch(/ 10\.0\.10\.254 +not probed \(hanat-lab up --probe-azs\)\n$/);
    } finally {
      await other.destroy();
    }
  });

  it('cleanup removes a run that was never torn down (a crashed lab)', async () => {
    const orphan = await DataPlane.create({ workerCommand: await buildWorkers(), apiSocketPath: socketPath, runDir: join(dir, 'orphan'), stateDir: stateDir(), probe: false });
    expect(readRunStates(stateDir()).map((s) => s.prefix)).toContain(orphan.prefix);
    const orphanPids = await orphan.processes();
    expect(orphanPids.length).toBeGreaterThan(0);
    const removed = await cleanupRun(execCommand, stateDir(), orphan.prefix);
    expect(removed.sort()).toEqual([orphan.names.igw, orphan.names.internet, orphan.names.router].sort());
    expect(await orphan.namespaces()).toEqual([]);
    expect(orphanPids.filter(alive)).toEqual([]);
    expect(readRunStates(stateDir()).map((s) => s.prefix)).not.toContain(orphan.prefix);
  });

  it('a lab process that dies of an uncaught error removes its namespaces and processes on the way out', async () => {
    // A separate process plays the lab: it builds the core, launches an instance whose
    // "agent" would run forever, installs the exit cleanup, then crashes.
    const entry = join(dir, 'crashing-lab.ts');
    writeFileSync(
      entry,
      `import { DataPlane } from ${JSON.stringify(join(import.meta.dirname, '../src/dataplane/dataplane.ts'))};
const [workers, apiSocketPath, runDir, stateDir] = process.argv.slice(2);
const dp = await DataPlane.create({ workerCommand: JSON.parse(workers), apiSocketPath, runDir, stateDir, probe: false, agentCommand: ['sleep', 'infinity'] });
dp.installExitCleanup();
await dp.launch({ instanceId: 'i-0ccccccccccccccc3', az: 'lab-1a', subnetId: 'subnet-pub', subnetCidr: '10.0.0.0/24', privateIp: '10.0.0.7', mac: '02:00:00:00:00:0c', networkInterfaceId: 'eni-c', vpcCidrs: ['10.0.0.0/16'], tags: {} });
process.stdout.write(JSON.stringify({ prefix: dp.prefix, namespaces: await dp.namespaces(), pids: await dp.processes() }) + '\\n');
setTimeout(() => { throw new Error('the lab crashes'); }, 10);
`,
    );
    const bundle = join(dir, 'crashing-lab.mjs');
    await build({ entryPoints: [entry], outfile: bundle, bundle: true, platform: 'node', format: 'esm', target: 'node20', logLevel: 'warning' });
    const workers = JSON.stringify(await buildWorkers());
    const child = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      execFile(process.execPath, [bundle, workers, socketPath, join(dir, 'crashed'), stateDir()], (err, stdout) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout }),
      );
    });
    expect(child.code).toBe(1);
    const crashed = JSON.parse(child.stdout) as { prefix: string; namespaces: string[]; pids: number[] };
    expect(crashed.namespaces).toHaveLength(4); // router, igw, internet and the instance
    expect(crashed.pids.length).toBeGreaterThanOrEqual(3); // echo, proxy and the instance's process
    expect((await listNamespaces(execCommand)).filter((ns) => ns.startsWith(`${crashed.prefix}-`))).toEqual([]);
    // Killed, they may linger a moment as zombies until init reaps them (their parent is gone).
    for (const deadline = Date.now() + 5_000; crashed.pids.some(alive) && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
    expect(crashed.pids.filter(alive)).toEqual([]);
    expect(readRunStates(stateDir()).map((s) => s.prefix)).not.toContain(crashed.prefix);
  });

  it('teardown leaves no namespace, link or process behind', async () => {
    expect(pids.length).toBeGreaterThan(3);
    await dp.destroy();
    expect(await dp.namespaces()).toEqual([]);
    expect(pids.filter(alive)).toEqual([]);
    const links = JSON.parse(await execCommand(['ip', '-j', 'link', 'show'])) as { ifname: string }[];
    expect(links.filter((l) => l.ifname.startsWith(dp.prefix))).toEqual([]);
    expect(existsSync(join(stateDir(), `${dp.prefix}.json`))).toBe(false);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
