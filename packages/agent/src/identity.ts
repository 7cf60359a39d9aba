/**
 * Who and where this instance is, read through IMDSv2 and validated before use
 * (DESIGN.md "Security": every input from outside is validated).
 */
import { TAG } from '@hanat/core';
import { ImdsError } from './errors.js';
import type { Imds } from './imds.js';

export interface Identity {
  instanceId: string;
  region: string;
  az: string;
  mac: string;
  /** Primary network interface: the target of hanat's routes. */
  eniId: string;
  subnetId: string;
  vpcId: string;
  /** Every IPv4 CIDR of the VPC, secondary blocks included. */
  vpcCidrs: string[];
  privateIp: string;
  /** Instance tags whose key starts with `hanat:` (empty when tags in metadata are off). */
  tags: Record<string, string>;
  /** Security groups of the primary interface (absent when IMDS did not list them). */
  securityGroupIds?: string[] | undefined;
}

/** The instance tag keys the agent reads values for (one IMDS call each). */
export function wantedTag(key: string): boolean {
  return key.startsWith('hanat:');
}

export async function readIdentity(imds: Imds): Promise<Identity> {
  const [instanceId, region, az, mac, privateIp, tagList] = await Promise.all([
    imds.get('instance-id'),
    imds.get('placement/region'),
    imds.get('placement/availability-zone'),
    imds.get('mac'),
    imds.get('local-ipv4'),
    imds.getOptional('tags/instance'),
  ]);
  const m = check('mac', mac.trim().toLowerCase(), MAC);
  const base = `network/interfaces/macs/${m}`;
  const keys = (tagList ?? '').split('\n').map((k) => k.trim()).filter((k) => k !== '' && wantedTag(k));
  const [subnetId, vpcId, cidrs, eniId, localIps, groups, ...tagValues] = await Promise.all([
    imds.get(`${base}/subnet-id`),
    imds.get(`${base}/vpc-id`),
    imds.get(`${base}/vpc-ipv4-cidr-blocks`),
    imds.get(`${base}/interface-id`),
    imds.get(`${base}/local-ipv4s`),
    imds.getOptional(`${base}/security-group-ids`),
    ...keys.map((k) => imds.get(`tags/instance/${encodeURI(k)}`)),
  ]);

  const id: Identity = {
    instanceId: check('instance-id', instanceId.trim(), /^i-[0-9a-f]{8,17}$/),
    region: check('placement/region', region.trim(), /^[a-z]{2,}(-[a-z0-9]+)+$/),
    az: check('placement/availability-zone', az.trim(), /^[a-z]{2,}(-[a-z0-9]+)+$/),
    mac: m,
    eniId: check(`${base}/interface-id`, eniId.trim(), /^eni-[0-9a-f]{8,17}$/),
    subnetId: check(`${base}/subnet-id`, subnetId.trim(), /^subnet-[0-9a-f]{8,17}$/),
    vpcId: check(`${base}/vpc-id`, vpcId.trim(), /^vpc-[0-9a-f]{8,17}$/),
    vpcCidrs: lines(cidrs).map((c) => check(`${base}/vpc-ipv4-cidr-blocks`, c, { test: isIpv4Cidr })),
    privateIp: check('local-ipv4', privateIp.trim(), { test: isIpv4 }),
    tags: {},
  };
  if (groups !== undefined) id.securityGroupIds = lines(groups).map((g) => check(`${base}/security-group-ids`, g, /^sg-[0-9a-f]{8,17}$/));
  if (!id.az.startsWith(id.region)) throw bad('placement/availability-zone', id.az, `is not in region ${id.region}`);
  if (id.vpcCidrs.length === 0) throw bad(`${base}/vpc-ipv4-cidr-blocks`, cidrs, 'lists no CIDR');
  const ips = lines(localIps);
  if (!ips.includes(id.privateIp)) throw bad(`${base}/local-ipv4s`, localIps, `does not include local-ipv4 ${id.privateIp}`);
  keys.forEach((k, i) => {
    const v = tagValues[i];
    if (v !== undefined) id.tags[k] = v;
  });
  return id;
}

/** The stack and AZ the instance's tags name, if any. */
export function tagConfig(id: Identity): { stack?: string | undefined; az?: string | undefined } {
  return { stack: id.tags[TAG.stack], az: id.tags[TAG.az] };
}

const MAC = /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/;

function lines(s: string): string[] {
  return s.split('\n').map((l) => l.trim()).filter((l) => l !== '');
}

function check(path: string, value: string, re: { test(s: string): boolean }): string {
  if (!re.test(value)) throw bad(path, value, 'is not valid');
  return value;
}

function bad(path: string, value: string, why: string): ImdsError {
  return new ImdsError(`IMDS ${path} = '${value.slice(0, 80)}' ${why}`, path);
}

export function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function isIpv4Cidr(s: string): boolean {
  const [addr, len, ...rest] = s.split('/');
  return rest.length === 0 && addr !== undefined && isIpv4(addr) && len !== undefined && /^(0|[1-9][0-9]?)$/.test(len) && Number(len) <= 32;
}

/** Whether the range `inner` lies inside `outer` (both already valid). */
export function cidrCovers(outer: string, inner: string): boolean {
  return Number(outer.split('/')[1]) <= Number(inner.split('/')[1]) && cidrContains(outer, inner.split('/')[0]!);
}

/** Whether the IPv4 address `ip` lies inside `cidr` (both already valid). */
export function cidrContains(cidr: string, ip: string): boolean {
  const [net, len] = cidr.split('/') as [string, string];
  const bits = Number(len);
  const toInt = (a: string) => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (toInt(net) & mask) === (toInt(ip) & mask);
}
