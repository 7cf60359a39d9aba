/**
 * nftables rulesets the lab owns, rendered as text for `nft -f -`. Each update is one
 * nft transaction, so the kernel never sees a half-applied ruleset.
 *
 * - Router (`table ip hanat_lab`): the forward hook holds source/dest check and faults, and
 *   jumps to `sg_ingress` for security group ingress (plan.ts).
 * - Internet gateway (`table ip hanat_lab_igw`): stateless 1:1 NAT, as AWS's internet
 *   gateway does it: a packet leaving the VPC gets its private source rewritten to the
 *   instance's public address, a packet arriving for a public address gets its
 *   destination rewritten to the private one. Stateless, so moving an EIP takes effect on
 *   the next packet, with no conntrack entry to go stale. Packets from an address with no
 *   public mapping, or to a public address nobody holds, are dropped.
 */
import type { IgwMapping } from './plan.js';

export const ROUTER_TABLE = 'hanat_lab';
export const IGW_TABLE = 'hanat_lab_igw';

export function routerBaseRuleset(): string {
  return [
    `table ip ${ROUTER_TABLE} {`,
    `  chain forward {`,
    `    type filter hook forward priority filter; policy accept;`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

/** The router's security group chain (see plan.ts): the forward chain jumps to it. */
export const SG_CHAIN = 'sg_ingress';

/** `rules` go to the forward chain, `ingress` to the security group chain it may jump to. */
export function routerForwardUpdate(rules: readonly string[], ingress: readonly string[] = []): string {
  return [
    `add chain ip ${ROUTER_TABLE} ${SG_CHAIN}`,
    `flush chain ip ${ROUTER_TABLE} forward`,
    `flush chain ip ${ROUTER_TABLE} ${SG_CHAIN}`,
    ...rules.map((r) => `add rule ip ${ROUTER_TABLE} forward ${r}`),
    ...ingress.map((r) => `add rule ip ${ROUTER_TABLE} ${SG_CHAIN} ${r}`),
    '',
  ].join('\n');
}

/** `fromRouter` is the gateway's link to the VPC router, `fromInternet` its link to the internet. */
export function igwBaseRuleset(fromRouter: string, fromInternet: string): string {
  return [
    `table ip ${IGW_TABLE} {`,
    `  map priv2pub { type ipv4_addr : ipv4_addr; }`,
    `  map pub2priv { type ipv4_addr : ipv4_addr; }`,
    `  chain prerouting {`,
    `    type filter hook prerouting priority raw; policy accept;`,
    `    notrack`,
    `    iifname "${fromRouter}" ip saddr != @priv2pub drop`,
    `    iifname "${fromRouter}" ip saddr set ip saddr map @priv2pub`,
    `    iifname "${fromInternet}" ip daddr != @pub2priv drop`,
    `    iifname "${fromInternet}" ip daddr set ip daddr map @pub2priv`,
    `  }`,
    `}`,
    '',
  ].join('\n');
}

export function igwMappingUpdate(mappings: readonly IgwMapping[]): string {
  const lines = [`flush map ip ${IGW_TABLE} priv2pub`, `flush map ip ${IGW_TABLE} pub2priv`];
  if (mappings.length > 0) {
    lines.push(`add element ip ${IGW_TABLE} priv2pub { ${mappings.map((m) => `${m.privateIp} : ${m.publicIp}`).join(', ')} }`);
    lines.push(`add element ip ${IGW_TABLE} pub2priv { ${mappings.map((m) => `${m.publicIp} : ${m.privateIp}`).join(', ')} }`);
  }
  return [...lines, ''].join('\n');
}
