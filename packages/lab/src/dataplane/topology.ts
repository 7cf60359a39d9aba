/**
 * Creating the lab's namespaces and links. Every command goes through the injected
 * `Exec`; links are created with both ends already inside lab namespaces, so nothing ever
 * appears in the root namespace and no namespace gets a path to a real network.
 *
 *   private host ─┐                       ┌─ internet (198.51.100.10, 203.0.113.10: echo)
 *   instance    ──┼── router ── igw (1:1 NAT) ──┘
 *   instance    ──┘   (policy routes, src/dst check, IMDS/API proxy)
 */
import { ENDPOINT_IFNAME, type Names } from './names.js';
import type { Exec } from './exec.js';
import { inNamespace, ipIn } from './exec.js';
import { gatewayIp, parseCidr } from './cidr.js';
import { igwBaseRuleset, routerBaseRuleset } from './netfilter.js';
import { IGW_TRANSIT, INTERNET_TRANSIT } from './plan.js';

/** IMDS, as on EC2. */
export const IMDS_ADDRESS = '169.254.169.254';
/** Where the instances reach the AWS API (the emulator, through the router's proxy). */
export const API_ADDRESS = '169.254.169.250';
/** The internet's test hosts (documentation addresses) and their echo port. */
export const INTERNET_HOSTS = ['198.51.100.10', '203.0.113.10'] as const;
export const ECHO_PORT = 7;
/** The igw's routing table for packets coming from the internet: everything goes to the router. */
const IGW_INBOUND_TABLE = 100;

async function sysctl(exec: Exec, ns: string, settings: Record<string, string | number>): Promise<void> {
  await exec(inNamespace(ns, ['sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]));
}

async function batch(exec: Exec, ns: string, lines: string[]): Promise<void> {
  await exec(ipIn(ns, '-batch', '-'), { input: lines.join('\n') + '\n' });
}

/** The router, internet gateway and internet namespaces and the links between them. */
export async function createCore(exec: Exec, names: Names): Promise<void> {
  for (const ns of [names.router, names.igw, names.internet]) await exec(['ip', 'netns', 'add', ns]);
  const quiet = { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 };
  // The router answers ARP for every endpoint's neighbours (proxy ARP), forwards, and sends no
  // redirects: endpoints must keep sending through it, as AWS's VPC router has them do.
  await sysctl(exec, names.router, {
    ...quiet,
    'net.ipv4.ip_forward': 1,
    'net.ipv4.conf.all.send_redirects': 0,
    'net.ipv4.conf.default.send_redirects': 0,
    'net.ipv4.conf.all.rp_filter': 0,
    'net.ipv4.conf.default.rp_filter': 0,
    'net.ipv4.conf.default.proxy_arp': 1,
  });
  await sysctl(exec, names.igw, { ...quiet, 'net.ipv4.ip_forward': 1, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });
  await sysctl(exec, names.internet, { ...quiet, 'net.ipv4.conf.all.rp_filter': 0, 'net.ipv4.conf.default.rp_filter': 0 });

  await exec(['ip', 'link', 'add', names.routerToIgw, 'netns', names.router, 'type', 'veth', 'peer', 'name', names.igwToRouter, 'netns', names.igw]);
  await exec(['ip', 'link', 'add', names.igwToInternet, 'netns', names.igw, 'type', 'veth', 'peer', 'name', names.internetToIgw, 'netns', names.internet]);

  await batch(exec, names.router, [
    'link set lo up',
    `link set ${names.routerToIgw} up`,
    `addr add ${IGW_TRANSIT.router}/${IGW_TRANSIT.prefixLength} dev ${names.routerToIgw}`,
    `addr add ${IMDS_ADDRESS}/32 dev lo`,
    `addr add ${API_ADDRESS}/32 dev lo`,
    // Whatever no route table sends anywhere is dropped silently, as in AWS.
    'route add blackhole default',
  ]);
  await batch(exec, names.igw, [
    'link set lo up',
    `link set ${names.igwToRouter} up`,
    `link set ${names.igwToInternet} up`,
    `addr add ${IGW_TRANSIT.igw}/${IGW_TRANSIT.prefixLength} dev ${names.igwToRouter}`,
    `addr add ${INTERNET_TRANSIT.igw}/${INTERNET_TRANSIT.prefixLength} dev ${names.igwToInternet}`,
    `route add default via ${INTERNET_TRANSIT.internet}`,
    // After the 1:1 NAT, a packet from the internet carries a VPC address: it goes to the router.
    `route add default via ${IGW_TRANSIT.router} table ${IGW_INBOUND_TABLE}`,
    `rule add iif ${names.igwToInternet} lookup ${IGW_INBOUND_TABLE} pref 100`,
  ]);
  await batch(exec, names.internet, [
    'link set lo up',
    `link set ${names.internetToIgw} up`,
    `addr add ${INTERNET_TRANSIT.internet}/${INTERNET_TRANSIT.prefixLength} dev ${names.internetToIgw}`,
    ...INTERNET_HOSTS.map((h) => `addr add ${h}/32 dev lo`),
    `route add default via ${INTERNET_TRANSIT.igw} src ${INTERNET_HOSTS[0]}`,
  ]);

  await exec(inNamespace(names.router, ['nft', '-f', '-']), { input: routerBaseRuleset() });
  await exec(inNamespace(names.igw, ['nft', '-f', '-']), { input: igwBaseRuleset(names.igwToRouter, names.igwToInternet) });
}

export interface EndpointSpec {
  ns: string;
  /** The router's end of the link. */
  link: string;
  ip: string;
  subnetCidr: string;
  mac?: string;
}

/**
 * An instance or private host: its own namespace with `eth0` at its subnet address and a
 * default route via the subnet's router address (network + 1), as on EC2. The router's end
 * holds that gateway address as a /32 (the same address on many links is fine) and a /32
 * route back to the endpoint.
 */
export async function createEndpoint(exec: Exec, names: Names, spec: EndpointSpec): Promise<void> {
  const gw = gatewayIp(spec.subnetCidr);
  const { prefixLength } = parseCidr(spec.subnetCidr);
  await exec(['ip', 'netns', 'add', spec.ns]);
  await exec([
    'ip', 'link', 'add', spec.link, 'netns', names.router, 'type', 'veth',
    'peer', 'name', ENDPOINT_IFNAME, 'netns', spec.ns, ...(spec.mac ? ['address', spec.mac] : []),
  ]);
  await batch(exec, spec.ns, [
    'link set lo up',
    `link set ${ENDPOINT_IFNAME} up`,
    `addr add ${spec.ip}/${prefixLength} dev ${ENDPOINT_IFNAME}`,
    `route add default via ${gw} dev ${ENDPOINT_IFNAME}`,
  ]);
  await batch(exec, names.router, [
    // Proxy ARP answers at once (Linux delays proxy replies by up to 0.8 s by default).
    `ntable change name arp_cache dev ${spec.link} proxy_delay 0`,
    `link set ${spec.link} up`,
    `addr add ${gw}/32 dev ${spec.link}`,
    `route replace ${spec.ip}/32 dev ${spec.link}`,
  ]);
}
