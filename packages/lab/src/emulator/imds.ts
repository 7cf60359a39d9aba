/**
 * The Instance Metadata Service, version 2, on the emulator's HTTP server under
 * /latest/. The caller is identified per contract.ts: by the x-hanat-lab-source-ip
 * header the lab's in-namespace proxy sets from the connection's source address,
 * or directly by x-hanat-lab-instance-id in unit tests.
 *
 * Behaviour follows the EC2 User Guide, "Use the Instance Metadata Service to
 * access instance metadata" and "Instance metadata categories".
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LAB_INSTANCE_HEADER, LAB_SOURCE_IP_HEADER } from '../contract.js';
import type { Account } from './account.js';
import type { Instance } from './ec2/state.js';
import { azId, privateDnsName, publicDnsName } from './env.js';
import type { Region } from './region.js';

export interface ImdsResponse {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

const TTL_HEADER = 'x-aws-ec2-metadata-token-ttl-seconds';
const TOKEN_HEADER = 'x-aws-ec2-metadata-token';

/** Instance tag keys IMDS can show (EC2 User Guide, "View tags in instance metadata"). */
const IMDS_TAG_KEY = /^[A-Za-z0-9+\-=._:@]+$/;

/** Obviously fake role credentials: the SDK's default chain reads them on the instance. */
export const LAB_CREDENTIALS = {
  AccessKeyId: 'ASIAHANATLABFAKE0000',
  SecretAccessKey: 'hanat-lab-fake-secret-access-key-not-real',
  Token: 'hanat-lab-fake-session-token-not-a-real-credential',
} as const;

const notFound: ImdsResponse = {
  status: 404,
  headers: { 'content-type': 'text/html' },
  body: '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>404 - Not Found</title>\n </head>\n <body>\n  <h1>404 - Not Found</h1>\n </body>\n</html>\n',
};

const unauthorized: ImdsResponse = { status: 401, headers: { 'content-type': 'text/plain' }, body: '' };

type Tree = { [key: string]: Tree | string };

export class Imds {
  private tokens = new Map<string, { instanceId: string; expires: number }>();

  constructor(private readonly account: Account) {}

  /** The calling instance, from the lab headers. */
  identify(req: IncomingMessage): { region: Region; instance: Instance } | undefined {
    const byId = req.headers[LAB_INSTANCE_HEADER];
    if (typeof byId === 'string') {
      const found = this.account.instanceById(byId);
      return found && found.instance.state !== 'terminated' ? found : undefined;
    }
    const ip = req.headers[LAB_SOURCE_IP_HEADER];
    if (typeof ip === 'string') return this.account.instanceByIp(ip);
    return undefined;
  }

  handle(req: IncomingMessage, path: string): ImdsResponse {
    const caller = this.identify(req);
    this.account.counters.record(req.method === 'PUT' ? 'imds:token' : 'imds:get', caller?.instance.id);
    if (!caller) return { status: 404, headers: { 'content-type': 'text/plain' }, body: 'hanat-lab: no instance has the caller address\n' };
    const { instance, region } = caller;
    if (instance.metadata.httpEndpoint === 'disabled') return { status: 403, body: '' };

    if (path === '/latest/api/token') {
      if (req.method !== 'PUT') return { status: 405, headers: { allow: 'OPTIONS, PUT' }, body: '' };
      if (req.headers['x-forwarded-for'] !== undefined) return { status: 403, body: '' };
      const raw = req.headers[TTL_HEADER];
      const ttl = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!(ttl >= 1 && ttl <= 21600)) return { status: 400, headers: { 'content-type': 'text/plain' }, body: '' };
      const token = randomBytes(42).toString('base64');
      this.tokens.set(token, { instanceId: instance.id, expires: this.account.clock.now() + ttl * 1000 });
      return { status: 200, headers: { 'content-type': 'text/plain', [TTL_HEADER]: String(ttl) }, body: token };
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') return { status: 405, headers: { allow: 'OPTIONS, GET, HEAD' }, body: '' };
    const token = req.headers[TOKEN_HEADER];
    if (typeof token === 'string') {
      const t = this.tokens.get(token);
      if (!t || t.instanceId !== instance.id || t.expires <= this.account.clock.now()) {
        if (t && t.expires <= this.account.clock.now()) this.tokens.delete(token);
        return unauthorized;
      }
    } else if (instance.metadata.httpTokens === 'required') {
      return unauthorized;
    }
    return this.lookup(region, instance, path);
  }

  private lookup(region: Region, instance: Instance, path: string): ImdsResponse {
    if (path === '/latest/user-data' || path === '/latest/user-data/') {
      if (!instance.userData) return notFound;
      return { status: 200, headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from(instance.userData, 'base64').toString('utf8') };
    }
    const tree: Tree = { 'meta-data': this.metadata(region, instance), dynamic: this.dynamic(region, instance) };
    const parts = path.replace(/^\/latest\/?/, '').split('/');
    const wantsDir = path.endsWith('/');
    let node: Tree | string = tree;
    for (const raw of parts.filter((x) => x !== '')) {
      let p: string;
      try {
        p = decodeURIComponent(raw);
      } catch {
        return notFound;
      }
      if (typeof node === 'string') return notFound;
      const next: Tree | string | undefined = node[p];
      if (next === undefined) return notFound;
      node = next;
    }
    if (typeof node === 'string') return wantsDir ? notFound : { status: 200, headers: { 'content-type': 'text/plain' }, body: node };
    const listing = Object.entries(node)
      .map(([k, v]) => (typeof v === 'string' ? k : `${k}/`))
      .join('\n');
    return { status: 200, headers: { 'content-type': 'text/plain' }, body: listing };
  }

  private metadata(region: Region, instance: Instance): Tree {
    const ec2 = region.ec2;
    const eni = ec2.networkInterfaces.get(instance.eniId);
    const subnet = ec2.subnets.get(instance.subnetId);
    const vpc = ec2.vpcs.get(instance.vpcId);
    const publicIp = eni ? ec2.publicIpOf(eni) : undefined;
    const hostname = privateDnsName(region.name, instance.privateIp);
    const groups = instance.groups.map((g) => ec2.securityGroups.get(g)?.name ?? g);
    const macTree: Tree = {
      'device-number': '0',
      'interface-id': instance.eniId,
      'local-hostname': hostname,
      'local-ipv4s': instance.privateIp,
      mac: instance.mac,
      'owner-id': region.env.accountId,
      'security-group-ids': instance.groups.join('\n'),
      'security-groups': groups.join('\n'),
      'subnet-id': instance.subnetId,
      'subnet-ipv4-cidr-block': subnet?.cidr ?? '',
      'vpc-id': instance.vpcId,
      'vpc-ipv4-cidr-block': vpc?.cidr ?? '',
      'vpc-ipv4-cidr-blocks': (vpc?.cidrs ?? []).map((c) => c.cidr).join('\n'),
      ...(publicIp ? { 'public-ipv4s': publicIp } : {}),
    };
    const md: Tree = {
      'ami-id': instance.imageId,
      'ami-launch-index': '0',
      'ami-manifest-path': '(unknown)',
      hostname,
      'instance-action': 'none',
      'instance-id': instance.id,
      'instance-life-cycle': 'on-demand',
      'instance-type': instance.instanceType,
      'local-hostname': hostname,
      'local-ipv4': instance.privateIp,
      mac: instance.mac,
      network: { interfaces: { macs: { [instance.mac]: macTree } } },
      placement: {
        'availability-zone': instance.az,
        'availability-zone-id': azId(region.name, instance.az),
        region: region.name,
      },
      'reservation-id': instance.reservationId,
      'security-groups': groups.join('\n'),
      services: { domain: 'amazonaws.com', partition: 'aws' },
      ...(publicIp ? { 'public-ipv4': publicIp, 'public-hostname': publicDnsName(region.name, publicIp) } : {}),
    };
    if (instance.iamInstanceProfile) {
      const profile = [...region.env.iam.instanceProfiles.values()].find((p) => p.arn === instance.iamInstanceProfile!.arn);
      const role = profile?.roles[0];
      const now = this.account.clock.now();
      md.iam = {
        info: JSON.stringify({ Code: 'Success', LastUpdated: new Date(now).toISOString(), InstanceProfileArn: instance.iamInstanceProfile.arn, InstanceProfileId: instance.iamInstanceProfile.id }, null, 2),
        ...(role
          ? {
              'security-credentials': {
                [role]: JSON.stringify(
                  {
                    Code: 'Success',
                    LastUpdated: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'),
                    Type: 'AWS-HMAC',
                    ...LAB_CREDENTIALS,
                    Expiration: new Date(now + 6 * 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
                  },
                  null,
                  2,
                ),
              },
            }
          : {}),
      };
    }
    if (instance.metadata.instanceMetadataTags === 'enabled') {
      const tags = ec2.tags.get(instance.id) ?? new Map<string, string>();
      const visible: Tree = {};
      for (const [k, v] of tags) if (IMDS_TAG_KEY.test(k) && k !== '.' && k !== '..' && k !== '_index') visible[k] = v;
      md.tags = { instance: visible };
    }
    return md;
  }

  private dynamic(region: Region, instance: Instance): Tree {
    const doc = {
      accountId: region.env.accountId,
      architecture: instance.architecture,
      availabilityZone: instance.az,
      billingProducts: null,
      devpayProductCodes: null,
      marketplaceProductCodes: null,
      imageId: instance.imageId,
      instanceId: instance.id,
      instanceType: instance.instanceType,
      kernelId: null,
      pendingTime: instance.launchTime.toISOString().replace(/\.\d+Z$/, 'Z'),
      privateIp: instance.privateIp,
      ramdiskId: null,
      region: region.name,
      version: '2017-09-30',
    };
    return { 'instance-identity': { document: JSON.stringify(doc, null, 2) } };
  }
}
