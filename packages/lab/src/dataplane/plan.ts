/**
 * The desired state of the VPC router and the internet gateway, computed from the
 * emulator's snapshot, the endpoints that exist as namespaces, and the injected faults.
 * Pure: no I/O, so the mapping from AWS semantics to Linux objects is unit-tested.
 *
 * How AWS semantics map onto the router namespace:
 * - A packet is routed by the route table of the subnet of the link it came in on
 *   (AWS picks the table by the sending ENI's subnet): one `ip rule iif <link> lookup
 *   <table>` per endpoint link.
 * - A table holds the route table's routes: `local` → `throw` (falls through to the main
 *   table, which has a /32 per endpoint); an internet gateway → the gateway link; an ENI
 *   whose instance runs here → `via <its address> dev <its link>`; anything else
 *   (blackhole, detached ENI, instance not running) → `blackhole`. Without a matching
 *   route the lookup reaches the main table, whose default is a blackhole: dropped, as in AWS.
 * - Source/dest check, crashes, gray failures, cut upstreams and partitions are nftables rules in
 *   the router's forward hook, so an instance's own traffic to the router (IMDS, the API)
 *   is never affected by them.
 * - Security groups, ingress only, for traffic from inside the VPC (not from the internet
 *   gateway) to an instance: a packet that opens a connection (conntrack state neither
 *   established nor related: groups are stateful) passes only if one of the instance's
 *   rules admits its source, protocol and port (VPC User Guide, "Security group rules").
 */
import type { NetIngressRule, NetworkSnapshot, NetRoute } from '../contract.js';
import { canonicalCidr, isIpv4Cidr } from './cidr.js';
import { SG_CHAIN } from './netfilter.js';

/** First routing table number and rule priority the lab uses in the router namespace. */
export const TABLE_BASE = 1000;
export const RULE_PREF_BASE = 1000;

/** The router ↔ internet gateway transit link (shared address space, never routed outside). */
export const IGW_TRANSIT = { router: '100.64.255.1', igw: '100.64.255.2', prefixLength: 30 } as const;
/** The internet gateway ↔ internet transit link. */
export const INTERNET_TRANSIT = { igw: '100.64.255.5', internet: '100.64.255.6', prefixLength: 30 } as const;

export interface Endpoint {
  /** Instance id, or `host-<subnet id>` for a private host. */
  id: string;
  kind: 'instance' | 'host';
  /** Index n of the router's link name and of the rule priority. */
  index: number;
  /** The router's end of the link. */
  link: string;
  ip: string;
  subnetId: string;
}

export interface Faults {
  /** Instances whose forwarded traffic the router drops, whatever their source/dest check says. */
  gray: ReadonlySet<string>;
  /** Instances cut off from the internet gateway (VPC traffic still flows). */
  upstreamCut: ReadonlySet<string>;
  /** Pairs of instances that cannot reach each other. */
  partitions: ReadonlyArray<readonly [string, string]>;
  /** Instances crashed in place: the router drops every packet to or from their link. */
  crashed: ReadonlySet<string>;
}

export const NO_FAULTS: Faults = { gray: new Set(), upstreamCut: new Set(), partitions: [], crashed: new Set() };

export type RouteSpec =
  | { type: 'unicast'; dst: string; via: string; dev: string }
  | { type: 'blackhole'; dst: string }
  | { type: 'throw'; dst: string };

export interface RuleSpec {
  pref: number;
  iif: string;
  table: number;
}

export interface IgwMapping {
  privateIp: string;
  publicIp: string;
}

export interface RouterPlan {
  rules: RuleSpec[];
  /** table number → routes; every table the lab manages appears, possibly empty. */
  tables: Map<number, RouteSpec[]>;
  /** The lab's nftables forward rules in the router (bodies of `chain forward`). */
  forwardRules: string[];
  /** Security group ingress, bodies of the router's `chain sg_ingress` (empty: nothing is filtered). */
  ingressRules: string[];
  igw: IgwMapping[];
}

export interface PlanInput {
  snapshot: NetworkSnapshot;
  endpoints: Iterable<Endpoint>;
  faults: Faults;
  /** Stable table number for a route table id. */
  tableOf: (routeTableId: string) => number;
  /** The router's link to the internet gateway. */
  igwLink: string;
}

export function routeKey(r: RouteSpec): string {
  switch (r.type) {
    case 'unicast':
      return `${r.dst} via ${r.via} dev ${r.dev}`;
    case 'blackhole':
      return `blackhole ${r.dst}`;
    case 'throw':
      return `throw ${r.dst}`;
  }
}

export function ruleKey(r: RuleSpec): string {
  return `${r.pref} iif ${r.iif} table ${r.table}`;
}

export function planRouter(input: PlanInput): RouterPlan {
  const { snapshot, faults, tableOf, igwLink } = input;
  const endpoints = [...input.endpoints].sort((a, b) => a.index - b.index);
  const byInstance = new Map(endpoints.filter((e) => e.kind === 'instance').map((e) => [e.id, e]));
  const instances = new Map(snapshot.instances.map((i) => [i.instanceId, i]));
  const subnets = new Map(snapshot.subnets.map((s) => [s.subnetId, s]));

  const tables = new Map<number, RouteSpec[]>();
  for (const table of snapshot.routeTables) {
    const routes: RouteSpec[] = [];
    for (const route of table.routes) {
      const spec = renderRoute(route, byInstance, igwLink);
      if (spec) routes.push(spec);
    }
    tables.set(tableOf(table.routeTableId), routes);
  }

  const rules: RuleSpec[] = [];
  for (const ep of endpoints) {
    const subnetId = ep.kind === 'instance' ? (instances.get(ep.id)?.subnetId ?? ep.subnetId) : ep.subnetId;
    const routeTableId = subnets.get(subnetId)?.routeTableId;
    if (routeTableId === undefined || !tables.has(tableOf(routeTableId))) continue; // no table: main's blackhole default
    rules.push({ pref: RULE_PREF_BASE + ep.index, iif: ep.link, table: tableOf(routeTableId) });
  }

  const forwardRules = renderForwardRules(endpoints, instances, faults, igwLink);
  const ingressRules = renderIngressRules(endpoints, instances);
  // Security groups judge what comes from inside the VPC and opens a connection (they are stateful).
  if (ingressRules.length > 0) forwardRules.push(`iifname != "${igwLink}" ct state != { established, related } jump ${SG_CHAIN}`);
  return { rules, tables, forwardRules, ingressRules, igw: renderIgw(snapshot, byInstance) };
}

function renderRoute(route: NetRoute, byInstance: Map<string, Endpoint>, igwLink: string): RouteSpec | undefined {
  if (!isIpv4Cidr(route.destinationCidr)) return undefined; // IPv6 and prefix lists are not emulated
  const dst = canonicalCidr(route.destinationCidr);
  const t = route.target;
  switch (t.kind) {
    case 'local':
      return { type: 'throw', dst };
    case 'igw':
      return { type: 'unicast', dst, via: IGW_TRANSIT.igw, dev: igwLink };
    case 'eni': {
      const ep = t.instanceId === undefined ? undefined : byInstance.get(t.instanceId);
      return ep ? { type: 'unicast', dst, via: ep.ip, dev: ep.link } : { type: 'blackhole', dst };
    }
    case 'blackhole':
      return { type: 'blackhole', dst };
  }
}

function renderForwardRules(
  endpoints: Endpoint[],
  instances: Map<string, { sourceDestCheck: boolean }>,
  faults: Faults,
  igwLink: string,
): string[] {
  const linkOf = new Map(endpoints.map((e) => [e.id, e]));
  const rules: string[] = [];
  for (const ep of endpoints) {
    if (!faults.crashed.has(ep.id)) continue;
    rules.push(`iifname "${ep.link}" drop comment "crash ${ep.id}"`);
    rules.push(`oifname "${ep.link}" drop comment "crash ${ep.id}"`);
  }
  for (const [a, b] of faults.partitions) {
    const ea = linkOf.get(a);
    const eb = linkOf.get(b);
    if (!ea || !eb) continue;
    rules.push(`iifname "${ea.link}" oifname "${eb.link}" drop comment "partition ${a} ${b}"`);
    rules.push(`iifname "${eb.link}" oifname "${ea.link}" drop comment "partition ${a} ${b}"`);
  }
  for (const ep of endpoints) {
    if (faults.upstreamCut.has(ep.id)) {
      rules.push(`iifname "${ep.link}" oifname "${igwLink}" drop comment "upstream cut ${ep.id}"`);
      rules.push(`iifname "${igwLink}" oifname "${ep.link}" drop comment "upstream cut ${ep.id}"`);
    }
  }
  for (const ep of endpoints) {
    // Private hosts are instances whose check is always on; an instance follows its attribute.
    const check = ep.kind === 'host' || (instances.get(ep.id)?.sourceDestCheck ?? true);
    const why = faults.gray.has(ep.id) ? 'gray failure' : check ? 'source/dest check' : undefined;
    if (!why) continue;
    rules.push(`iifname "${ep.link}" ip saddr != ${ep.ip} drop comment "${why} ${ep.id}"`);
    rules.push(`oifname "${ep.link}" ip daddr != ${ep.ip} drop comment "${why} ${ep.id}"`);
  }
  return rules;
}

/**
 * Per instance with known groups: one `return` (admitted) per rule, then a drop. The
 * forward chain jumps here only for packets from inside the VPC that open a connection.
 */
function renderIngressRules(endpoints: Endpoint[], instances: Map<string, { ingress?: NetIngressRule[] }>): string[] {
  const rules: string[] = [];
  for (const ep of endpoints) {
    const ingress = ep.kind === 'instance' ? instances.get(ep.id)?.ingress : undefined;
    if (!ingress) continue;
    for (const r of ingress) {
      if (!isIpv4Cidr(r.cidr)) continue; // IPv6 and prefix lists are not emulated
      const match = protocolMatch(r);
      if (match === undefined) continue;
      rules.push(`oifname "${ep.link}" ip saddr ${canonicalCidr(r.cidr)}${match} return`);
    }
    rules.push(`oifname "${ep.link}" drop comment "security group ingress ${ep.id}"`);
  }
  return rules;
}

/** The nft match for a rule's protocol and ports ('' for every protocol); undefined when it cannot be expressed. */
function protocolMatch(r: NetIngressRule): string | undefined {
  const all = r.fromPort === undefined || r.fromPort === -1;
  const range = all ? '' : r.toPort === undefined || r.toPort === r.fromPort ? ` ${r.fromPort}` : ` ${r.fromPort}-${r.toPort}`;
  switch (r.protocol) {
    case '-1':
      return '';
    case 'tcp':
    case 'udp':
      return all ? ` meta l4proto ${r.protocol}` : ` ${r.protocol} dport${range}`;
    case 'icmp':
      // For ICMP, EC2's FromPort is the type and ToPort the code (-1: any).
      if (all) return ' meta l4proto icmp';
      return r.toPort === undefined || r.toPort === -1 ? ` icmp type ${r.fromPort}` : ` icmp type ${r.fromPort} icmp code ${r.toPort}`;
    default:
      return /^\d{1,3}$/.test(r.protocol) ? ` meta l4proto ${r.protocol}` : undefined;
  }
}

function renderIgw(snapshot: NetworkSnapshot, byInstance: Map<string, Endpoint>): IgwMapping[] {
  const out: IgwMapping[] = [];
  const seen = new Set<string>();
  for (const i of snapshot.instances) {
    const ep = byInstance.get(i.instanceId);
    if (!ep || !i.publicIp) continue;
    // An address maps once: a duplicate (which AWS would not allow) must not break the map.
    if (seen.has(ep.ip) || seen.has(i.publicIp)) continue;
    seen.add(ep.ip).add(i.publicIp);
    out.push({ privateIp: ep.ip, publicIp: i.publicIp });
  }
  return out.sort((a, b) => a.privateIp.localeCompare(b.privateIp));
}
