import { describe, expect, it } from 'vitest';
import type { NetworkSnapshot } from '../src/contract.js';
import { canonicalCidr, cidrContains, gatewayIp, lastUsableIp } from '../src/dataplane/cidr.js';
import { igwMappingUpdate } from '../src/dataplane/netfilter.js';
import type { Endpoint, Faults } from '../src/dataplane/plan.js';
import { IGW_TRANSIT, NO_FAULTS, planRouter } from '../src/dataplane/plan.js';
import { RouterApplier } from '../src/dataplane/router.js';

const vpc = 'vpc-1';
function snapshot(overrides: Partial<NetworkSnapshot> = {}): NetworkSnapshot {
  return {
    version: 1,
    vpcs: [{ vpcId: vpc, cidrs: ['10.0.0.0/16'] }],
    subnets: [
      { subnetId: 'subnet-pub', vpcId: vpc, cidr: '10.0.0.0/24', az: 'lab-1a', routeTableId: 'rtb-pub', network: 'public' },
      { subnetId: 'subnet-priv', vpcId: vpc, cidr: '10.0.10.0/24', az: 'lab-1a', routeTableId: 'rtb-priv', network: 'private' },
    ],
    routeTables: [
      {
        routeTableId: 'rtb-pub',
        vpcId: vpc,
        routes: [
          { destinationCidr: '10.0.0.0/16', target: { kind: 'local' } },
          { destinationCidr: '0.0.0.0/0', target: { kind: 'igw', gatewayId: 'igw-1' } },
        ],
      },
      {
        routeTableId: 'rtb-priv',
        vpcId: vpc,
        routes: [
          { destinationCidr: '10.0.0.0/16', target: { kind: 'local' } },
          { destinationCidr: '0.0.0.0/0', target: { kind: 'eni', networkInterfaceId: 'eni-a', instanceId: 'i-a', privateIp: '10.0.0.5' } },
        ],
      },
    ],
    instances: [
      { instanceId: 'i-a', state: 'running', az: 'lab-1a', subnetId: 'subnet-pub', privateIp: '10.0.0.5', networkInterfaceId: 'eni-a', mac: '02:00:00:00:00:0a', sourceDestCheck: false, publicIp: '198.18.0.10' },
      { instanceId: 'i-b', state: 'running', az: 'lab-1a', subnetId: 'subnet-pub', privateIp: '10.0.0.6', networkInterfaceId: 'eni-b', mac: '02:00:00:00:00:0b', sourceDestCheck: true, publicIp: '198.18.0.11' },
    ],
    ...overrides,
  };
}

const endpoints: Endpoint[] = [
  { id: 'i-a', kind: 'instance', index: 1, link: 'hl0000e1', ip: '10.0.0.5', subnetId: 'subnet-pub' },
  { id: 'i-b', kind: 'instance', index: 2, link: 'hl0000e2', ip: '10.0.0.6', subnetId: 'subnet-pub' },
  { id: 'host-subnet-priv', kind: 'host', index: 3, link: 'hl0000e3', ip: '10.0.10.254', subnetId: 'subnet-priv' },
];
const tables: Record<string, number> = { 'rtb-pub': 1001, 'rtb-priv': 1002 };
const plan = (snap: NetworkSnapshot, eps: Endpoint[] = endpoints, faults: Faults = NO_FAULTS) =>
  planRouter({ snapshot: snap, endpoints: eps, faults, tableOf: (id) => tables[id]!, igwLink: 'hl0000gw' });

describe('router plan', () => {
  it('routes each endpoint link by the route table of its subnet', () => {
    expect(plan(snapshot()).rules).toEqual([
      { pref: 1001, iif: 'hl0000e1', table: 1001 },
      { pref: 1002, iif: 'hl0000e2', table: 1001 },
      { pref: 1003, iif: 'hl0000e3', table: 1002 },
    ]);
  });

  it('sends local traffic to the main table, the igw route to the gateway link and an ENI route to its instance', () => {
    const p = plan(snapshot());
    expect(p.tables.get(1001)).toEqual([
      { type: 'throw', dst: '10.0.0.0/16' },
      { type: 'unicast', dst: '0.0.0.0/0', via: IGW_TRANSIT.igw, dev: 'hl0000gw' },
    ]);
    expect(p.tables.get(1002)).toContainEqual({ type: 'unicast', dst: '0.0.0.0/0', via: '10.0.0.5', dev: 'hl0000e1' });
  });

  it('blackholes a route whose ENI has no instance running in the lab, and a blackhole route', () => {
    const snap = snapshot();
    snap.routeTables[1]!.routes[1] = { destinationCidr: '0.0.0.0/0', target: { kind: 'eni', networkInterfaceId: 'eni-a', instanceId: 'i-a' } };
    expect(plan(snap, endpoints.filter((e) => e.id !== 'i-a')).tables.get(1002)).toContainEqual({ type: 'blackhole', dst: '0.0.0.0/0' });
    snap.routeTables[1]!.routes[1] = { destinationCidr: '0.0.0.0/0', target: { kind: 'eni', networkInterfaceId: 'eni-x' } };
    expect(plan(snap).tables.get(1002)).toContainEqual({ type: 'blackhole', dst: '0.0.0.0/0' });
    snap.routeTables[1]!.routes[1] = { destinationCidr: '0.0.0.0/0', target: { kind: 'blackhole' } };
    expect(plan(snap).tables.get(1002)).toContainEqual({ type: 'blackhole', dst: '0.0.0.0/0' });
  });

  it('leaves a table without a default route when the route table has none (the main table drops)', () => {
    const snap = snapshot();
    snap.routeTables[1]!.routes.pop();
    expect(plan(snap).tables.get(1002)).toEqual([{ type: 'throw', dst: '10.0.0.0/16' }]);
  });

  it('ignores IPv6 and non-canonical destinations are normalised', () => {
    const snap = snapshot();
    snap.routeTables[1]!.routes.push({ destinationCidr: '::/0', target: { kind: 'blackhole' } }, { destinationCidr: '192.168.7.9/16', target: { kind: 'blackhole' } });
    expect(plan(snap).tables.get(1002)).toEqual([
      { type: 'throw', dst: '10.0.0.0/16' },
      { type: 'unicast', dst: '0.0.0.0/0', via: '10.0.0.5', dev: 'hl0000e1' },
      { type: 'blackhole', dst: '192.168.0.0/16' },
    ]);
  });

  it('enforces source/dest check for instances that have it on and for private hosts, not for those that turned it off', () => {
    const rules = plan(snapshot()).forwardRules.join('\n');
    expect(rules).not.toMatch(/hl0000e1"/);
    expect(rules).toContain('iifname "hl0000e2" ip saddr != 10.0.0.6 drop');
    expect(rules).toContain('oifname "hl0000e2" ip daddr != 10.0.0.6 drop');
    expect(rules).toContain('iifname "hl0000e3" ip saddr != 10.0.10.254 drop');
  });

  it('renders faults: gray failure drops forwarding even with the check off, upstream cut and partitions', () => {
    const faults: Faults = { gray: new Set(['i-a']), upstreamCut: new Set(['i-b']), partitions: [['i-a', 'i-b']], crashed: new Set() };
    const rules = plan(snapshot(), endpoints, faults).forwardRules;
    expect(rules).toContain('iifname "hl0000e1" ip saddr != 10.0.0.5 drop comment "gray failure i-a"');
    expect(rules).toContain('iifname "hl0000e2" oifname "hl0000gw" drop comment "upstream cut i-b"');
    expect(rules).toContain('iifname "hl0000gw" oifname "hl0000e2" drop comment "upstream cut i-b"');
    expect(rules).toContain('iifname "hl0000e1" oifname "hl0000e2" drop comment "partition i-a i-b"');
    expect(rules).toContain('iifname "hl0000e2" oifname "hl0000e1" drop comment "partition i-a i-b"');
  });

  it('renders a crash in place: every packet to or from the crashed instance is dropped, before any other rule', () => {
    const faults: Faults = { ...NO_FAULTS, crashed: new Set(['i-b']) };
    const rules = plan(snapshot(), endpoints, faults).forwardRules;
    expect(rules.slice(0, 2)).toEqual(['iifname "hl0000e2" drop comment "crash i-b"', 'oifname "hl0000e2" drop comment "crash i-b"']);
    expect(rules.join('\n')).not.toMatch(/hl0000e1" drop/);
    expect(plan(snapshot()).forwardRules.join('\n')).not.toContain('crash');
  });

  it('enforces security group ingress for instances whose groups are known, for what comes from inside the VPC and opens a connection', () => {
    const snap = snapshot();
    snap.instances[0]!.ingress = [
      { protocol: '-1', cidr: '10.0.0.0/16' },
      { protocol: 'tcp', fromPort: 22, toPort: 22, cidr: '192.0.2.0/24' },
      { protocol: 'udp', fromPort: 1000, toPort: 2000, cidr: '192.0.2.0/24' },
      { protocol: 'icmp', fromPort: 8, toPort: -1, cidr: '0.0.0.0/0' },
      { protocol: 'icmp', fromPort: 3, toPort: 4, cidr: '0.0.0.0/0' },
      { protocol: '-1', cidr: '2001:db8::/32' },
    ];
    const p = plan(snap);
    expect(p.ingressRules).toEqual([
      'oifname "hl0000e1" ip saddr 10.0.0.0/16 return',
      'oifname "hl0000e1" ip saddr 192.0.2.0/24 tcp dport 22 return',
      'oifname "hl0000e1" ip saddr 192.0.2.0/24 udp dport 1000-2000 return',
      'oifname "hl0000e1" ip saddr 0.0.0.0/0 icmp type 8 return',
      'oifname "hl0000e1" ip saddr 0.0.0.0/0 icmp type 3 icmp code 4 return',
      'oifname "hl0000e1" drop comment "security group ingress i-a"',
    ]);
    // Stateful, and the internet gateway's side is not judged here (the lab's scope: EMULATOR.md).
    expect(p.forwardRules.at(-1)).toBe('iifname != "hl0000gw" ct state != { established, related } jump sg_ingress');
    // i-b's groups are unknown (no `ingress`): nothing is filtered for it, and nothing at all without groups.
    expect(p.ingressRules.join('\n')).not.toContain('hl0000e2');
    expect(plan(snapshot()).ingressRules).toEqual([]);
    expect(plan(snapshot()).forwardRules.join('\n')).not.toContain('sg_ingress');
  });

  it('maps public addresses one to one for running instances only, never twice', () => {
    const snap = snapshot();
    snap.instances.push({ ...snap.instances[0]!, instanceId: 'i-c', privateIp: '10.0.0.7' });
    const eps = [...endpoints, { id: 'i-c', kind: 'instance' as const, index: 4, link: 'hl0000e4', ip: '10.0.0.7', subnetId: 'subnet-pub' }];
    expect(plan(snap, eps).igw).toEqual([
      { privateIp: '10.0.0.5', publicIp: '198.18.0.10' },
      { privateIp: '10.0.0.6', publicIp: '198.18.0.11' },
    ]);
    expect(plan(snap, endpoints.slice(1)).igw).toEqual([{ privateIp: '10.0.0.6', publicIp: '198.18.0.11' }]);
    expect(igwMappingUpdate(plan(snap, eps).igw)).toContain('add element ip hanat_lab_igw pub2priv { 198.18.0.10 : 10.0.0.5, 198.18.0.11 : 10.0.0.6 }');
  });
});

describe('router applier', () => {
  /** Records each command; answers the first observation with an empty router. */
  function recorder() {
    const calls: { argv: readonly string[]; input?: string | undefined }[] = [];
    const exec = (argv: readonly string[], options?: { input?: string }) => {
      calls.push({ argv, input: options?.input });
      return Promise.resolve(argv.includes('-j') ? '[]' : '');
    };
    return { calls, exec };
  }
  const kind = (c: { argv: readonly string[] }) => (c.argv.includes('nft') ? `nft ${c.argv[3]}` : c.argv.includes('-batch') ? 'routes' : 'observe');

  it('maps addresses and filters before it routes, so a claimed route never carries traffic under a stale public address', async () => {
    const { calls, exec } = recorder();
    const applier = new RouterApplier(exec, 'hl0000-router', 'hl0000-igw');
    await applier.apply(plan(snapshot()));
    // Then, in one snapshot, i-b gets an Elastic IP and the private table's route moves to it.
    const snap = snapshot();
    snap.instances[1] = { ...snap.instances[1]!, publicIp: '198.18.0.99', sourceDestCheck: false };
    snap.routeTables[1]!.routes[1] = { destinationCidr: '0.0.0.0/0', target: { kind: 'eni', networkInterfaceId: 'eni-b', instanceId: 'i-b', privateIp: '10.0.0.6' } };
    calls.length = 0;
    const { changes } = await applier.apply(plan(snap));
    expect(changes).toBe(3);
    expect(calls.map(kind)).toEqual(['nft hl0000-router', 'nft hl0000-igw', 'routes']);
    expect(calls[1]!.input).toContain('10.0.0.6 : 198.18.0.99');
    expect(calls[2]!.input).toContain('route replace 0.0.0.0/0 via 10.0.0.6 dev hl0000e2 onlink table 1002');
  });
});

describe('cidr', () => {
  it('computes the subnet router address and the last usable address', () => {
    expect(gatewayIp('10.0.10.0/24')).toBe('10.0.10.1');
    expect(lastUsableIp('10.0.10.0/24')).toBe('10.0.10.254');
    expect(lastUsableIp('10.0.0.0/28')).toBe('10.0.0.14');
    expect(canonicalCidr('10.0.10.77/24')).toBe('10.0.10.0/24');
    expect(cidrContains('10.0.0.0/16', '10.0.200.3')).toBe(true);
    expect(cidrContains('10.0.0.0/16', '10.1.0.3')).toBe(false);
    expect(() => canonicalCidr('10.0.0.0/33')).toThrow(RangeError);
  });
});
