/**
 * The EC2 world of one region: VPCs, subnets, route tables, gateways, security
 * groups, network interfaces, instances, Elastic IPs, key pairs, images and
 * launch templates, with AWS's validation rules and error codes. The API
 * handlers (handlers.ts) and CloudFormation resources both call these methods,
 * so a template and a CLI call fail the same way.
 *
 * Behaviour follows the EC2 API Reference (docs.aws.amazon.com/AWSEC2/latest/APIReference/);
 * see EMULATOR.md for the page behind each rule.
 */
import type { IpPermission } from '@aws-sdk/client-ec2';
import type { LaunchSpec } from '../../contract.js';
import { containsCidr, containsIp, formatIp, overlaps, parseCidr, parseIp, size } from '../cidr.js';
import type { Env } from '../env.js';
import { AwsError, invalidParameterValue, missingParameter, notFound } from '../errors.js';
import { instanceTypeArchitecture, isOffered, unsupportedInAz } from './offerings.js';
import type { Tags } from '../tags.js';

export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

export const STATE_CODE: Record<InstanceStateName, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface Vpc {
  id: string;
  cidr: string;
  cidrs: { associationId: string; cidr: string }[];
  instanceTenancy: string;
  enableDnsSupport: boolean;
  enableDnsHostnames: boolean;
  dhcpOptionsId: string;
  defaultNetworkAclId: string;
  defaultSecurityGroupId: string;
}

export interface Subnet {
  id: string;
  vpcId: string;
  cidr: string;
  az: string;
  mapPublicIpOnLaunch: boolean;
}

export interface Route {
  destination: string;
  gatewayId?: string | undefined;
  networkInterfaceId?: string | undefined;
  origin: 'CreateRouteTable' | 'CreateRoute';
}

export interface RouteTableAssociation {
  id: string;
  subnetId?: string | undefined;
  main: boolean;
}

export interface RouteTable {
  id: string;
  vpcId: string;
  routes: Route[];
  associations: RouteTableAssociation[];
}

export interface InternetGateway {
  id: string;
  vpcId?: string | undefined;
}

export interface SecurityGroup {
  id: string;
  name: string;
  description: string;
  vpcId: string;
  ingress: IpPermission[];
  egress: IpPermission[];
}

export interface NetworkInterface {
  id: string;
  subnetId: string;
  vpcId: string;
  az: string;
  privateIp: string;
  mac: string;
  sourceDestCheck: boolean;
  groups: string[];
  description: string;
  /** Auto-assigned public address (released while an EIP is associated). */
  publicIp?: string | undefined;
  /** Whether the interface was launched with a public address (it gets one back when an EIP leaves). */
  wantsPublicIp: boolean;
  attachment?: { id: string; instanceId: string; deviceIndex: number; deleteOnTermination: boolean; attachTime: Date } | undefined;
}

export interface MetadataOptions {
  httpTokens: 'optional' | 'required';
  httpPutResponseHopLimit: number;
  httpEndpoint: 'enabled' | 'disabled';
  instanceMetadataTags: 'enabled' | 'disabled';
}

export interface Instance {
  id: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  architecture: string;
  state: InstanceStateName;
  stateReason?: { code: string; message: string } | undefined;
  stateTransitionReason: string;
  az: string;
  subnetId: string;
  vpcId: string;
  eniId: string;
  privateIp: string;
  mac: string;
  launchTime: Date;
  keyName?: string | undefined;
  iamInstanceProfile?: { arn: string; id: string } | undefined;
  metadata: MetadataOptions;
  /** Base64, as the API carries it. */
  userData?: string | undefined;
  groups: string[];
  launchTemplate?: { id: string; name: string; version: string } | undefined;
  clientToken?: string | undefined;
  terminatedAt?: number | undefined;
  /** When the instance became `running` (its status checks start then). */
  runningAt?: number | undefined;
  /** When the instance crashed in place (hardware, kernel panic, hang): it stays `running`, its status checks fail later. */
  crashedAt?: number | undefined;
  /** When the instance was handed to the launcher (its OS, and the agent, start then). */
  bootedAt?: number | undefined;
}

export type StatusCheck = 'ok' | 'impaired' | 'initializing' | 'insufficient-data' | 'not-applicable';

/** What DescribeInstanceStatus says about one instance. */
export interface InstanceStatusView {
  instance: StatusCheck;
  system: StatusCheck;
  /** When the instance check failed. */
  impairedSince?: Date;
}

export interface Address {
  allocationId: string;
  publicIp: string;
  association?: { id: string; networkInterfaceId: string } | undefined;
}

export interface KeyPair {
  id: string;
  name: string;
  type: string;
  fingerprint: string;
  publicKey: string;
  created: Date;
}

export interface Image {
  id: string;
  name: string;
  description: string;
  architecture: 'arm64' | 'x86_64';
  created: Date;
}

/** Launch template data in the API's / CloudFormation's shape (RequestLaunchTemplateData). */
export type LaunchTemplateData = Record<string, unknown>;

export interface LaunchTemplateVersion {
  number: number;
  data: LaunchTemplateData;
  created: Date;
  description?: string | undefined;
}

export interface LaunchTemplate {
  id: string;
  name: string;
  created: Date;
  versions: LaunchTemplateVersion[];
  defaultVersion: number;
}

export interface LaunchRequest {
  subnetId: string;
  imageId: string;
  instanceType: string;
  keyName?: string | undefined;
  /** Name or ARN. */
  iamInstanceProfile?: string | undefined;
  metadata?: Partial<MetadataOptions> | undefined;
  userData?: string | undefined;
  securityGroupIds?: string[] | undefined;
  associatePublicIp?: boolean | undefined;
  tags?: Tags | undefined;
  /** Tags for the primary network interface (TagSpecifications of type network-interface). */
  interfaceTags?: Tags | undefined;
  launchTemplate?: { id: string; name: string; version: string } | undefined;
  clientToken?: string | undefined;
}

/** The lab's own NAT images, registered in every region at start (fixed ids, see EMULATOR.md). */
export const LAB_IMAGES: readonly Omit<Image, 'created'>[] = [
  { id: 'ami-0a1b2c3d4e5f60001', name: 'hanat-lab-nat-arm64', description: 'hanat-lab NAT image (arm64)', architecture: 'arm64' },
  { id: 'ami-0a1b2c3d4e5f60002', name: 'hanat-lab-nat-x86_64', description: 'hanat-lab NAT image (x86_64)', architecture: 'x86_64' },
];

const ID = /^[a-z]+-[0-9a-f]{8}([0-9a-f]{9})?$/;

/** The first host offset the emulator hands out (AWS reserves .0-.3; the lab keeps .1-.9 for itself). */
const FIRST_HOST = 10;
/** Host offsets from here up are left to the lab's private test hosts. */
const LAST_HOST_EXCLUSIVE = 200;

function gmt(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' GMT');
}

/**
 * With tags in instance metadata enabled, EC2 refuses to launch an instance
 * whose tag keys IMDS cannot show (EC2 User Guide, "View tags for your EC2
 * instances using instance metadata"), with this error.
 */
function checkMetadataTagKey(key: string): void {
  if (/^[0-9a-zA-Z\-_+=,.@:]{1,255}$/.test(key) && !['.', '..', '_index'].includes(key)) return;
  throw invalidParameterValue(`'${key}' is not a valid tag key. Tag keys must match pattern ([0-9a-zA-Z\\-_+=,.@:]{1,255}), and must not be a reserved name ('.', '..', '_index')`);
}

export class Ec2 {
  readonly vpcs = new Map<string, Vpc>();
  readonly subnets = new Map<string, Subnet>();
  readonly routeTables = new Map<string, RouteTable>();
  readonly internetGateways = new Map<string, InternetGateway>();
  readonly securityGroups = new Map<string, SecurityGroup>();
  readonly networkInterfaces = new Map<string, NetworkInterface>();
  readonly instances = new Map<string, Instance>();
  readonly addresses = new Map<string, Address>();
  readonly keyPairs = new Map<string, KeyPair>();
  readonly images = new Map<string, Image>();
  readonly launchTemplates = new Map<string, LaunchTemplate>();
  /** Tags of every resource, by resource id. */
  readonly tags = new Map<string, Tags>();

  private terminations = new Map<string, Promise<void>>();
  private shuttingDownListeners: ((instance: Instance) => void)[] = [];
  private impairedListeners: ((instance: Instance) => void)[] = [];
  private readonly dhcpOptionsId: string;

  constructor(readonly env: Env) {
    this.dhcpOptionsId = env.ids.next('dopt');
    for (const img of LAB_IMAGES) this.images.set(img.id, { ...img, created: new Date(env.clock.now()) });
  }

  // ------------------------------------------------------------------ tags

  tagsOf(id: string): Tags {
    let t = this.tags.get(id);
    if (!t) this.tags.set(id, (t = new Map<string, string>()));
    return t;
  }

  setTags(id: string, tags: Tags): void {
    const t = this.tagsOf(id);
    for (const [k, v] of tags) t.set(k, v);
    if (t.size > 50) throw new AwsError('TagLimitExceeded', 'The maximum number of Tags for a resource has been reached.');
    if (this.affectsNetwork(id)) this.env.changed();
  }

  deleteTags(id: string, tags: { key: string; value?: string | undefined }[]): void {
    const t = this.tagsOf(id);
    for (const { key, value } of tags) if (value === undefined || t.get(key) === value) t.delete(key);
    if (this.affectsNetwork(id)) this.env.changed();
  }

  private affectsNetwork(id: string): boolean {
    return id.startsWith('subnet-');
  }

  /** The resource type of an id, for tags (`vpc`, `subnet`, `route-table`, ...), or undefined if it does not exist. */
  resourceType(id: string): string | undefined {
    if (this.vpcs.has(id)) return 'vpc';
    if (this.subnets.has(id)) return 'subnet';
    if (this.routeTables.has(id)) return 'route-table';
    if (this.internetGateways.has(id)) return 'internet-gateway';
    if (this.securityGroups.has(id)) return 'security-group';
    if (this.networkInterfaces.has(id)) return 'network-interface';
    if (this.instances.has(id)) return 'instance';
    if (this.addresses.has(id)) return 'elastic-ip';
    if (this.images.has(id)) return 'image';
    if (this.launchTemplates.has(id)) return 'launch-template';
    if ([...this.keyPairs.values()].some((k) => k.id === id)) return 'key-pair';
    return undefined;
  }

  /** Throws the NotFound error EC2 returns for an id of this kind. */
  requireResource(id: string): void {
    if (this.resourceType(id)) return;
    const prefix = id.split('-')[0];
    const known: Record<string, [string, string]> = {
      vpc: ['InvalidVpcID.NotFound', 'vpc'],
      subnet: ['InvalidSubnetID.NotFound', 'subnet'],
      rtb: ['InvalidRouteTableID.NotFound', 'routeTable'],
      igw: ['InvalidInternetGatewayID.NotFound', 'internetGateway'],
      sg: ['InvalidGroup.NotFound', 'security group'],
      eni: ['InvalidNetworkInterfaceID.NotFound', 'networkInterface'],
      i: ['InvalidInstanceID.NotFound', 'instance'],
      eipalloc: ['InvalidAllocationID.NotFound', 'allocation'],
      ami: ['InvalidAMIID.NotFound', 'image'],
      lt: ['InvalidLaunchTemplateId.NotFound', 'launch template'],
    };
    const k = prefix ? known[prefix] : undefined;
    if (k) throw notFound(k[0], k[1], id);
    throw new AwsError('InvalidID', `The ID '${id}' is not valid`);
  }

  private forgetTags(id: string): void {
    this.tags.delete(id);
  }

  // ------------------------------------------------------------------ lookups

  vpc(id: string): Vpc {
    const v = this.vpcs.get(id);
    if (!v) throw notFound('InvalidVpcID.NotFound', 'vpc', id);
    return v;
  }

  subnet(id: string): Subnet {
    const s = this.subnets.get(id);
    if (!s) throw notFound('InvalidSubnetID.NotFound', 'subnet', id);
    return s;
  }

  routeTable(id: string): RouteTable {
    const r = this.routeTables.get(id);
    if (!r) throw notFound('InvalidRouteTableID.NotFound', 'routeTable', id);
    return r;
  }

  internetGateway(id: string): InternetGateway {
    const g = this.internetGateways.get(id);
    if (!g) throw new AwsError('InvalidInternetGatewayID.NotFound', `The internetGateway ID '${id}' does not exist`);
    return g;
  }

  securityGroup(id: string): SecurityGroup {
    const g = this.securityGroups.get(id);
    if (!g) throw new AwsError('InvalidGroup.NotFound', `The security group '${id}' does not exist`);
    return g;
  }

  networkInterface(id: string): NetworkInterface {
    const e = this.networkInterfaces.get(id);
    if (!e) throw notFound('InvalidNetworkInterfaceID.NotFound', 'networkInterface', id);
    return e;
  }

  instance(id: string): Instance {
    if (!/^i-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw new AwsError('InvalidInstanceID.Malformed', `Invalid id: "${id}"`);
    const i = this.instances.get(id);
    if (!i) throw notFound('InvalidInstanceID.NotFound', 'instance', id);
    return i;
  }

  address(allocationId: string): Address {
    const a = this.addresses.get(allocationId);
    if (!a) throw new AwsError('InvalidAllocationID.NotFound', `The allocation ID '${allocationId}' does not exist`);
    return a;
  }

  image(id: string): Image {
    if (!/^ami-[0-9a-f]{8}([0-9a-f]{9})?$/.test(id)) throw new AwsError('InvalidAMIID.Malformed', `Invalid id: "${id}" (expecting "ami-...")`);
    const i = this.images.get(id);
    if (!i) throw new AwsError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
    return i;
  }

  keyPair(name: string): KeyPair {
    const k = this.keyPairs.get(name);
    if (!k) throw new AwsError('InvalidKeyPair.NotFound', `The key pair '${name}' does not exist`);
    return k;
  }

  launchTemplate(idOrName: { id?: string | undefined; name?: string | undefined }): LaunchTemplate {
    if (idOrName.id) {
      const lt = this.launchTemplates.get(idOrName.id);
      if (!lt) throw new AwsError('InvalidLaunchTemplateId.NotFound', `The specified launch template, with template ID ${idOrName.id}, does not exist.`);
      return lt;
    }
    if (idOrName.name) {
      const lt = [...this.launchTemplates.values()].find((t) => t.name === idOrName.name);
      if (!lt) throw new AwsError('InvalidLaunchTemplateName.NotFoundException', `The specified launch template, with template name ${idOrName.name}, does not exist.`);
      return lt;
    }
    throw missingParameter('launchTemplateId or launchTemplateName');
  }

  /** A version by number, `$Latest` or `$Default` (the default when absent). */
  launchTemplateVersion(lt: LaunchTemplate, version: string | undefined): LaunchTemplateVersion {
    const n =
      version === undefined || version === '$Default'
        ? lt.defaultVersion
        : version === '$Latest'
          ? Math.max(...lt.versions.map((v) => v.number))
          : Number(version);
    const v = lt.versions.find((x) => x.number === n);
    if (!v) throw new AwsError('InvalidLaunchTemplateVersion.NotFound', `The specified launch template version ${version ?? ''} does not exist for launch template ${lt.id}.`);
    return v;
  }

  /** The route table that governs a subnet: its explicit association, else the VPC's main table. */
  routeTableForSubnet(subnetId: string): RouteTable | undefined {
    const subnet = this.subnets.get(subnetId);
    if (!subnet) return undefined;
    let main: RouteTable | undefined;
    for (const rt of this.routeTables.values()) {
      if (rt.vpcId !== subnet.vpcId) continue;
      for (const a of rt.associations) {
        if (a.subnetId === subnetId) return rt;
        if (a.main) main = rt;
      }
    }
    return main;
  }

  /** The instance an interface is attached to, if that instance still exists. */
  attachedInstance(eni: NetworkInterface): Instance | undefined {
    const id = eni.attachment?.instanceId;
    return id ? this.instances.get(id) : undefined;
  }

  /** Route state as AWS reports it: blackhole when the target is gone, detached or not running. */
  routeState(rt: RouteTable, route: Route): 'active' | 'blackhole' {
    if (route.gatewayId === 'local') return 'active';
    if (route.gatewayId) {
      const igw = this.internetGateways.get(route.gatewayId);
      return igw?.vpcId === rt.vpcId ? 'active' : 'blackhole';
    }
    if (route.networkInterfaceId) {
      const eni = this.networkInterfaces.get(route.networkInterfaceId);
      if (!eni) return 'blackhole';
      const inst = this.attachedInstance(eni);
      return inst && (inst.state === 'running' || inst.state === 'pending') ? 'active' : 'blackhole';
    }
    return 'blackhole';
  }

  /** The public address the internet sees for an interface: its Elastic IP, else its auto-assigned one. */
  publicIpOf(eni: NetworkInterface): string | undefined {
    return this.addressOn(eni.id)?.publicIp ?? eni.publicIp;
  }

  addressOn(eniId: string): Address | undefined {
    for (const a of this.addresses.values()) if (a.association?.networkInterfaceId === eniId) return a;
    return undefined;
  }

  // ------------------------------------------------------------------ VPCs

  createVpc(opts: { cidr: string; instanceTenancy?: string | undefined; enableDnsSupport?: boolean | undefined; enableDnsHostnames?: boolean | undefined; tags?: Tags | undefined }): Vpc {
    const cidr = parseCidr(opts.cidr, true);
    if (!parseCidr(opts.cidr)) throw invalidParameterValue(`Value (${opts.cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block.`);
    if (!cidr || cidr.prefix < 16 || cidr.prefix > 28) throw new AwsError('InvalidVpc.Range', `The CIDR '${opts.cidr}' is invalid.`);
    const inUse = this.env.vpcRangeInUse?.(opts.cidr);
    if (inUse) {
      // A lab limitation, not AWS's: one router carries every VPC, so an address must name one host.
      const where = [inUse.region, inUse.stackName && `stack ${inUse.stackName}`].filter(Boolean).join(', ');
      throw new AwsError(
        'InvalidVpc.Range',
        `The CIDR '${opts.cidr}' overlaps ${inUse.cidr} of ${inUse.vpcId} (${where}). ` +
          'hanat-lab routes every VPC through one router, so VPC ranges must not overlap in the lab (AWS allows it): ' +
          `choose another range (hanat deploy --cidr-prefix) or delete ${inUse.stackName ? `stack ${inUse.stackName}` : inUse.vpcId} first.`,
      );
    }
    const { ids } = this.env;
    const vpc: Vpc = {
      id: ids.next('vpc'),
      cidr: opts.cidr,
      cidrs: [{ associationId: ids.next('vpc-cidr-assoc'), cidr: opts.cidr }],
      instanceTenancy: opts.instanceTenancy ?? 'default',
      enableDnsSupport: opts.enableDnsSupport ?? true,
      enableDnsHostnames: opts.enableDnsHostnames ?? false,
      dhcpOptionsId: this.dhcpOptionsId,
      defaultNetworkAclId: ids.next('acl'),
      defaultSecurityGroupId: '',
    };
    this.vpcs.set(vpc.id, vpc);
    if (opts.tags) this.setTags(vpc.id, opts.tags);
    const main = this.createRouteTable(vpc.id);
    main.associations.push({ id: ids.next('rtbassoc'), main: true });
    const sg = this.createSecurityGroup({ name: 'default', description: 'default VPC security group', vpcId: vpc.id });
    sg.ingress = [{ IpProtocol: '-1', UserIdGroupPairs: [{ GroupId: sg.id, UserId: this.env.accountId }], IpRanges: [], Ipv6Ranges: [], PrefixListIds: [] }];
    vpc.defaultSecurityGroupId = sg.id;
    this.env.changed();
    return vpc;
  }

  /**
   * AssociateVpcCidrBlock (IPv4): a secondary range, as the VPC User Guide ("VPC CIDR blocks",
   * IPv4 CIDR block association restrictions; "Amazon VPC quotas": 5 IPv4 CIDR blocks per VPC)
   * describes it. Every route table of the VPC gets a `local` route for it, as in AWS.
   */
  associateVpcCidr(vpcId: string, cidrText: string): { associationId: string; cidr: string } {
    const vpc = this.vpc(vpcId);
    if (!parseCidr(cidrText)) throw invalidParameterValue(`Value (${cidrText}) for parameter cidrBlock is invalid. This is not a valid CIDR block.`);
    const cidr = parseCidr(cidrText, true);
    if (!cidr || cidr.prefix < 16 || cidr.prefix > 28) throw new AwsError('InvalidVpc.Range', `The CIDR '${cidrText}' is invalid.`);
    if (vpc.cidrs.length >= VPC_IPV4_CIDR_LIMIT) {
      throw new AwsError('CidrLimitExceeded', `This network '${vpc.id}' has met its maximum number of allowed CIDRs: ${VPC_IPV4_CIDR_LIMIT}`);
    }
    const clash = vpc.cidrs.find((c) => overlaps(parseCidr(c.cidr)!, cidr));
    if (clash) throw new AwsError('InvalidVpc.Range', `The CIDR '${cidrText}' conflicts with CIDR '${clash.cidr}' of ${vpc.id}.`);
    const primary = privateBlockOf(parseCidr(vpc.cidr)!);
    const wanted = privateBlockOf(cidr);
    if (wanted !== undefined && wanted !== primary) {
      throw new AwsError('InvalidVpc.Range', `The CIDR '${cidrText}' is restricted: a VPC whose primary range is ${vpc.cidr} cannot add a range from ${wanted}.`);
    }
    const inUse = this.env.vpcRangeInUse?.(cidrText);
    if (inUse) {
      throw new AwsError(
        'InvalidVpc.Range',
        `The CIDR '${cidrText}' overlaps ${inUse.cidr} of ${inUse.vpcId}. hanat-lab routes every VPC through one router, so VPC ranges must not overlap in the lab (AWS allows it).`,
      );
    }
    const assoc = { associationId: this.env.ids.next('vpc-cidr-assoc'), cidr: cidrText };
    vpc.cidrs.push(assoc);
    for (const rt of this.routeTables.values()) {
      if (rt.vpcId === vpc.id) rt.routes.push({ destination: cidrText, gatewayId: 'local', origin: 'CreateRouteTable' });
    }
    this.env.changed();
    return assoc;
  }

  modifyVpc(id: string, attrs: { enableDnsSupport?: boolean | undefined; enableDnsHostnames?: boolean | undefined }): void {
    const vpc = this.vpc(id);
    if (attrs.enableDnsSupport !== undefined) vpc.enableDnsSupport = attrs.enableDnsSupport;
    if (attrs.enableDnsHostnames !== undefined) vpc.enableDnsHostnames = attrs.enableDnsHostnames;
  }

  deleteVpc(id: string): void {
    const vpc = this.vpc(id);
    const dependent =
      [...this.subnets.values()].some((s) => s.vpcId === id) ||
      [...this.internetGateways.values()].some((g) => g.vpcId === id) ||
      [...this.routeTables.values()].some((r) => r.vpcId === id && !r.associations.some((a) => a.main)) ||
      [...this.securityGroups.values()].some((g) => g.vpcId === id && g.id !== vpc.defaultSecurityGroupId) ||
      [...this.networkInterfaces.values()].some((e) => e.vpcId === id);
    if (dependent) throw new AwsError('DependencyViolation', `The vpc '${id}' has dependencies and cannot be deleted.`);
    for (const rt of [...this.routeTables.values()]) if (rt.vpcId === id) this.forget(this.routeTables, rt.id);
    this.forget(this.securityGroups, vpc.defaultSecurityGroupId);
    this.forget(this.vpcs, id);
    this.env.changed();
  }

  private forget<T>(map: Map<string, T>, id: string): void {
    map.delete(id);
    this.forgetTags(id);
  }

  // ------------------------------------------------------------------ subnets

  createSubnet(opts: { vpcId: string; cidr: string; az?: string | undefined; mapPublicIpOnLaunch?: boolean | undefined; tags?: Tags | undefined }): Subnet {
    const vpc = this.vpc(opts.vpcId);
    if (!parseCidr(opts.cidr)) throw invalidParameterValue(`Value (${opts.cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block.`);
    const cidr = parseCidr(opts.cidr, true);
    const inVpc = cidr && vpc.cidrs.some((c) => containsCidr(parseCidr(c.cidr)!, cidr));
    if (!cidr || !inVpc || cidr.prefix < 16 || cidr.prefix > 28) throw new AwsError('InvalidSubnet.Range', `The CIDR '${opts.cidr}' is invalid.`);
    for (const s of this.subnets.values()) {
      if (s.vpcId === vpc.id && overlaps(parseCidr(s.cidr)!, cidr)) throw new AwsError('InvalidSubnet.Conflict', `The CIDR '${opts.cidr}' conflicts with another subnet`);
    }
    const az = opts.az ?? this.env.azs[0]!;
    if (!this.env.azs.includes(az)) {
      throw invalidParameterValue(`Value (${az}) for parameter availabilityZone is invalid. Subnets can currently only be created in the following availability zones: ${this.env.azs.join(', ')}.`);
    }
    const subnet: Subnet = { id: this.env.ids.next('subnet'), vpcId: vpc.id, cidr: opts.cidr, az, mapPublicIpOnLaunch: opts.mapPublicIpOnLaunch ?? false };
    this.subnets.set(subnet.id, subnet);
    if (opts.tags) this.setTags(subnet.id, opts.tags);
    this.env.changed();
    return subnet;
  }

  modifySubnet(id: string, attrs: { mapPublicIpOnLaunch?: boolean | undefined }): void {
    const s = this.subnet(id);
    if (attrs.mapPublicIpOnLaunch !== undefined) s.mapPublicIpOnLaunch = attrs.mapPublicIpOnLaunch;
  }

  deleteSubnet(id: string): void {
    this.subnet(id);
    if ([...this.networkInterfaces.values()].some((e) => e.subnetId === id)) {
      throw new AwsError('DependencyViolation', `The subnet '${id}' has dependencies and cannot be deleted.`);
    }
    for (const rt of this.routeTables.values()) rt.associations = rt.associations.filter((a) => a.subnetId !== id);
    this.forget(this.subnets, id);
    this.env.changed();
  }

  availableAddresses(subnet: Subnet): number {
    const used = [...this.networkInterfaces.values()].filter((e) => e.subnetId === subnet.id).length;
    return size(parseCidr(subnet.cidr)!) - 5 - used;
  }

  /** The first free address from .10 upward (below .200), per EMULATOR.md "Addressing". */
  private allocatePrivateIp(subnet: Subnet): string {
    const cidr = parseCidr(subnet.cidr)!;
    const used = new Set([...this.networkInterfaces.values()].filter((e) => e.subnetId === subnet.id).map((e) => e.privateIp));
    const n = size(cidr);
    const first = n >= 256 ? FIRST_HOST : 4;
    const last = n >= 256 ? LAST_HOST_EXCLUSIVE : n - 1;
    for (let off = first; off < last; off++) {
      const ip = formatIp(cidr.base + off);
      if (!used.has(ip)) return ip;
    }
    throw new AwsError('InsufficientFreeAddressesInSubnet', `There are not enough free addresses in subnet '${subnet.id}' to satisfy the requested number of instances.`);
  }

  // ------------------------------------------------------------------ route tables

  createRouteTable(vpcId: string, tags?: Tags): RouteTable {
    const vpc = this.vpc(vpcId);
    const rt: RouteTable = {
      id: this.env.ids.next('rtb'),
      vpcId,
      routes: vpc.cidrs.map((c) => ({ destination: c.cidr, gatewayId: 'local', origin: 'CreateRouteTable' as const })),
      associations: [],
    };
    this.routeTables.set(rt.id, rt);
    if (tags) this.setTags(rt.id, tags);
    this.env.changed();
    return rt;
  }

  deleteRouteTable(id: string): void {
    const rt = this.routeTable(id);
    if (rt.associations.length > 0) throw new AwsError('DependencyViolation', `The routeTable '${id}' has dependencies and cannot be deleted.`);
    this.forget(this.routeTables, id);
    this.env.changed();
  }

  associateRouteTable(routeTableId: string, subnetId: string): RouteTableAssociation {
    const rt = this.routeTable(routeTableId);
    const subnet = this.subnet(subnetId);
    if (subnet.vpcId !== rt.vpcId) throw invalidParameterValue(`Route table ${routeTableId} and subnet ${subnetId} belong to different networks`);
    for (const other of this.routeTables.values()) {
      const a = other.associations.find((x) => x.subnetId === subnetId);
      if (a) throw new AwsError('Resource.AlreadyAssociated', `the specified association for route table ${other.id} conflicts with an existing association`);
    }
    const assoc = { id: this.env.ids.next('rtbassoc'), subnetId, main: false };
    rt.associations.push(assoc);
    this.env.changed();
    return assoc;
  }

  private findAssociation(associationId: string): { rt: RouteTable; assoc: RouteTableAssociation } {
    for (const rt of this.routeTables.values()) {
      const assoc = rt.associations.find((a) => a.id === associationId);
      if (assoc) return { rt, assoc };
    }
    throw new AwsError('InvalidAssociationID.NotFound', `The association ID '${associationId}' does not exist`);
  }

  disassociateRouteTable(associationId: string): void {
    const { rt, assoc } = this.findAssociation(associationId);
    if (assoc.main) throw invalidParameterValue(`cannot disassociate the main route table association ${associationId}`);
    rt.associations = rt.associations.filter((a) => a !== assoc);
    this.env.changed();
  }

  replaceRouteTableAssociation(associationId: string, routeTableId: string): RouteTableAssociation {
    const { rt, assoc } = this.findAssociation(associationId);
    const target = this.routeTable(routeTableId);
    if (target.vpcId !== rt.vpcId) throw invalidParameterValue(`Route table ${routeTableId} and association ${associationId} belong to different networks`);
    rt.associations = rt.associations.filter((a) => a !== assoc);
    const moved = { ...assoc, id: this.env.ids.next('rtbassoc') };
    target.associations.push(moved);
    this.env.changed();
    return moved;
  }

  /** Validates a route target and returns it as stored (an instance target becomes its primary interface). */
  private routeTarget(rt: RouteTable, t: { gatewayId?: string | undefined; networkInterfaceId?: string | undefined; instanceId?: string | undefined; natGatewayId?: string | undefined }): Pick<Route, 'gatewayId' | 'networkInterfaceId'> {
    const given = [t.gatewayId, t.networkInterfaceId, t.instanceId, t.natGatewayId].filter((x) => x !== undefined && x !== '');
    if (given.length === 0) {
      throw missingParameter('gatewayId, networkInterfaceId, instanceId, natGatewayId, vpcPeeringConnectionId, egressOnlyInternetGatewayId, transitGatewayId, localGatewayId or carrierGatewayId');
    }
    if (given.length > 1) throw new AwsError('InvalidParameterCombination', 'The parameter combination is not valid: specify exactly one route target');
    if (t.natGatewayId) throw new AwsError('InvalidNatGatewayID.NotFound', `The natGateway ID '${t.natGatewayId}' does not exist`);
    if (t.gatewayId) {
      if (t.gatewayId === 'local') throw invalidParameterValue('cannot create a route to the local gateway');
      const igw = this.internetGateways.get(t.gatewayId);
      if (!igw) throw new AwsError('InvalidGatewayID.NotFound', `The gateway ID '${t.gatewayId}' does not exist`);
      if (igw.vpcId !== rt.vpcId) throw invalidParameterValue(`route table ${rt.id} and network gateway ${t.gatewayId} belong to different networks`);
      return { gatewayId: t.gatewayId };
    }
    let eniId = t.networkInterfaceId;
    if (t.instanceId) {
      const inst = this.instance(t.instanceId);
      if (inst.state === 'terminated' || inst.state === 'shutting-down') {
        throw new AwsError('IncorrectInstanceState', `The instance '${inst.id}' is not in a valid state for this operation.`);
      }
      eniId = inst.eniId;
    }
    const eni = this.networkInterface(eniId!);
    if (eni.vpcId !== rt.vpcId) throw invalidParameterValue(`route table ${rt.id} and interface ${eni.id} belong to different networks`);
    return { networkInterfaceId: eni.id };
  }

  private destination(cidr: string | undefined): string {
    if (cidr === undefined || cidr === '') throw missingParameter('destinationCidrBlock or destinationIpv6CidrBlock or destinationPrefixListId');
    const c = parseCidr(cidr, true);
    if (!c) throw invalidParameterValue(`Value (${cidr}) for parameter destinationCidrBlock is invalid. This is not a valid CIDR block.`);
    return cidr;
  }

  createRoute(routeTableId: string, destinationCidr: string | undefined, target: Parameters<Ec2['routeTarget']>[1]): Route {
    const rt = this.routeTable(routeTableId);
    const destination = this.destination(destinationCidr);
    if (rt.routes.some((r) => r.destination === destination)) throw new AwsError('RouteAlreadyExists', `The route identified by ${destination} already exists.`);
    const vpc = this.vpc(rt.vpcId);
    const dest = parseCidr(destination)!;
    if (vpc.cidrs.some((c) => containsCidr(parseCidr(c.cidr)!, dest)) && target.gatewayId) {
      throw invalidParameterValue(`The destination CIDR block ${destination} is equal to or more specific than one of this VPC's CIDR blocks. This route can target only an interface or an instance.`);
    }
    const route: Route = { destination, origin: 'CreateRoute', ...this.routeTarget(rt, target) };
    rt.routes.push(route);
    this.env.changed();
    return route;
  }

  replaceRoute(routeTableId: string, destinationCidr: string | undefined, target: Parameters<Ec2['routeTarget']>[1]): Route {
    const rt = this.routeTable(routeTableId);
    const destination = this.destination(destinationCidr);
    const route = rt.routes.find((r) => r.destination === destination);
    if (!route) throw invalidParameterValue(`There is no route defined for '${destination}' in the route table. Use CreateRoute instead.`);
    if (route.gatewayId === 'local') throw invalidParameterValue(`cannot replace local route ${destination} in route table ${routeTableId}`);
    const next = this.routeTarget(rt, target);
    route.gatewayId = next.gatewayId;
    route.networkInterfaceId = next.networkInterfaceId;
    this.env.changed();
    return route;
  }

  deleteRoute(routeTableId: string, destinationCidr: string | undefined): void {
    const rt = this.routeTable(routeTableId);
    const destination = this.destination(destinationCidr);
    const route = rt.routes.find((r) => r.destination === destination);
    if (!route) throw new AwsError('InvalidRoute.NotFound', `no route with destination-cidr-block ${destination} in route table ${routeTableId}`);
    if (route.gatewayId === 'local') throw invalidParameterValue(`cannot remove local route ${destination} in route table ${routeTableId}`);
    rt.routes = rt.routes.filter((r) => r !== route);
    this.env.changed();
  }

  // ------------------------------------------------------------------ internet gateways

  createInternetGateway(tags?: Tags): InternetGateway {
    const igw = { id: this.env.ids.next('igw') };
    this.internetGateways.set(igw.id, igw);
    if (tags) this.setTags(igw.id, tags);
    return igw;
  }

  attachInternetGateway(igwId: string, vpcId: string): void {
    const igw = this.internetGateway(igwId);
    this.vpc(vpcId);
    if (igw.vpcId) throw new AwsError('Resource.AlreadyAssociated', `resource ${igwId} is already attached to network ${igw.vpcId}`);
    if ([...this.internetGateways.values()].some((g) => g.vpcId === vpcId)) {
      throw new AwsError('InvalidParameterValue', `Network ${vpcId} already has an internet gateway attached`);
    }
    igw.vpcId = vpcId;
    this.env.changed();
  }

  detachInternetGateway(igwId: string, vpcId: string): void {
    const igw = this.internetGateway(igwId);
    if (igw.vpcId !== vpcId) throw new AwsError('Gateway.NotAttached', `resource ${igwId} is not attached to network ${vpcId}`);
    igw.vpcId = undefined;
    this.env.changed();
  }

  deleteInternetGateway(igwId: string): void {
    const igw = this.internetGateway(igwId);
    if (igw.vpcId) throw new AwsError('DependencyViolation', `The internetGateway '${igwId}' has dependencies and cannot be deleted.`);
    this.forget(this.internetGateways, igwId);
  }

  // ------------------------------------------------------------------ security groups

  createSecurityGroup(opts: { name: string; description: string; vpcId: string | undefined; tags?: Tags | undefined }): SecurityGroup {
    if (!opts.vpcId) throw new AwsError('VPCIdNotSpecified', 'No default VPC for this user');
    this.vpc(opts.vpcId);
    if (!opts.description) throw missingParameter('GroupDescription');
    if ([...this.securityGroups.values()].some((g) => g.vpcId === opts.vpcId && g.name === opts.name)) {
      throw new AwsError('InvalidGroup.Duplicate', `The security group '${opts.name}' already exists for VPC '${opts.vpcId}'`);
    }
    const sg: SecurityGroup = {
      id: this.env.ids.next('sg'),
      name: opts.name,
      description: opts.description,
      vpcId: opts.vpcId,
      ingress: [],
      egress: [{ IpProtocol: '-1', IpRanges: [{ CidrIp: '0.0.0.0/0' }], Ipv6Ranges: [], PrefixListIds: [], UserIdGroupPairs: [] }],
    };
    this.securityGroups.set(sg.id, sg);
    if (opts.tags) this.setTags(sg.id, opts.tags);
    return sg;
  }

  setSecurityGroupRules(id: string, rules: { ingress?: IpPermission[] | undefined; egress?: IpPermission[] | undefined }): void {
    const sg = this.securityGroup(id);
    if (rules.ingress) sg.ingress = rules.ingress;
    if (rules.egress) sg.egress = rules.egress;
    this.env.changed();
  }

  /**
   * AuthorizeSecurityGroupIngress: adds rules; a rule that is already there (same protocol,
   * ports and source) fails the whole call with InvalidPermission.Duplicate, as in EC2.
   */
  authorizeIngress(id: string, permissions: IpPermission[]): IpPermission[] {
    const sg = this.securityGroup(id);
    if (permissions.length === 0) throw missingParameter('IpPermissions');
    const added: IpPermission[] = [];
    for (const p of permissions) {
      const protocol = normaliseProtocol(p.IpProtocol);
      const ports = protocol === '-1' ? {} : { FromPort: p.FromPort, ToPort: p.ToPort };
      for (const range of p.IpRanges ?? []) {
        if (!range.CidrIp || !parseCidr(range.CidrIp)) throw invalidParameterValue(`CIDR block ${range.CidrIp ?? ''} is malformed`);
        const exists = [...sg.ingress, ...added].some(
          (q) => normaliseProtocol(q.IpProtocol) === protocol && q.FromPort === ports.FromPort && q.ToPort === ports.ToPort && (q.IpRanges ?? []).some((r) => r.CidrIp === range.CidrIp),
        );
        if (exists) {
          throw new AwsError('InvalidPermission.Duplicate', `the specified rule "peer: ${range.CidrIp}, ${protocol === '-1' ? 'ALL' : protocol.toUpperCase()}, ALLOW" already exists`);
        }
        added.push({ IpProtocol: protocol, ...ports, IpRanges: [{ CidrIp: range.CidrIp, ...(range.Description ? { Description: range.Description } : {}) }], Ipv6Ranges: [], PrefixListIds: [], UserIdGroupPairs: [] });
      }
      for (const pair of p.UserIdGroupPairs ?? []) {
        if (!pair.GroupId) throw missingParameter('GroupId');
        this.securityGroup(pair.GroupId);
        added.push({ IpProtocol: protocol, ...ports, IpRanges: [], Ipv6Ranges: [], PrefixListIds: [], UserIdGroupPairs: [{ GroupId: pair.GroupId, UserId: this.env.accountId }] });
      }
    }
    sg.ingress.push(...added);
    this.env.changed();
    return added;
  }

  /**
   * The ingress rules of an interface's security groups as address ranges, for the data
   * plane: a rule naming a group admits the private addresses of that group's interfaces.
   */
  ingressOf(eni: NetworkInterface): { protocol: string; fromPort?: number; toPort?: number; cidr: string }[] {
    const out: { protocol: string; fromPort?: number; toPort?: number; cidr: string }[] = [];
    for (const gid of eni.groups) {
      for (const p of this.securityGroups.get(gid)?.ingress ?? []) {
        const protocol = normaliseProtocol(p.IpProtocol);
        const ports = protocol === '-1' || p.FromPort === undefined ? {} : { fromPort: p.FromPort, toPort: p.ToPort ?? p.FromPort };
        for (const r of p.IpRanges ?? []) if (r.CidrIp) out.push({ protocol, ...ports, cidr: r.CidrIp });
        for (const pair of p.UserIdGroupPairs ?? []) {
          for (const member of this.networkInterfaces.values()) {
            if (pair.GroupId && member.groups.includes(pair.GroupId)) out.push({ protocol, ...ports, cidr: `${member.privateIp}/32` });
          }
        }
      }
    }
    return out;
  }

  deleteSecurityGroup(id: string): void {
    const sg = this.securityGroup(id);
    if ([...this.networkInterfaces.values()].some((e) => e.groups.includes(id))) {
      throw new AwsError('DependencyViolation', `resource ${id} has a dependent object`);
    }
    const vpc = this.vpcs.get(sg.vpcId);
    if (vpc?.defaultSecurityGroupId === id) throw new AwsError('CannotDelete', `the specified group: "${id}" name: "default" cannot be deleted by a user`);
    this.forget(this.securityGroups, id);
  }

  /**
   * Whether EC2's API does not know the instance yet (eventual consistency): for
   * settings.propagationDelayMs after it boots, calls naming it or its interface
   * answer NotFound (EC2 Developer Guide, "Eventual consistency in the Amazon EC2 API").
   */
  notPropagatedYet(inst: Instance): boolean {
    const delay = this.env.settings.propagationDelayMs;
    if (delay <= 0) return false;
    return this.env.clock.now() - (inst.bootedAt ?? inst.launchTime.getTime()) < delay;
  }

  // ------------------------------------------------------------------ Elastic IPs

  /** AllocateAddress: refused over the region's quota, with AWS's error. */
  allocateAddress(tags?: Tags): Address {
    if (this.addresses.size >= this.env.settings.eipQuota) throw new AwsError('AddressLimitExceeded', 'The maximum number of addresses has been reached.');
    const a: Address = { allocationId: this.env.ids.next('eipalloc'), publicIp: this.env.publicIps.elastic() };
    this.addresses.set(a.allocationId, a);
    if (tags) this.setTags(a.allocationId, tags);
    return a;
  }

  releaseAddress(allocationId: string): void {
    const a = this.address(allocationId);
    if (a.association) throw new AwsError('InvalidIPAddress.InUse', `The address with allocation id [${allocationId}] is currently associated with ${a.association.networkInterfaceId}.`);
    this.forget(this.addresses, allocationId);
  }

  associateAddress(opts: { allocationId?: string | undefined; publicIp?: string | undefined; instanceId?: string | undefined; networkInterfaceId?: string | undefined; allowReassociation?: boolean | undefined }): string {
    let address: Address | undefined;
    if (opts.allocationId) address = this.address(opts.allocationId);
    else if (opts.publicIp) {
      address = [...this.addresses.values()].find((a) => a.publicIp === opts.publicIp);
      if (!address) throw new AwsError('InvalidAddress.NotFound', `Address '${opts.publicIp}' not found.`);
    } else throw missingParameter('AllocationId');
    if (!opts.instanceId && !opts.networkInterfaceId) throw missingParameter('instanceId or networkInterfaceId');
    let eni: NetworkInterface;
    if (opts.networkInterfaceId) {
      eni = this.networkInterface(opts.networkInterfaceId);
      if (opts.instanceId && eni.attachment?.instanceId !== opts.instanceId) {
        throw new AwsError('InvalidParameterCombination', `The network interface ${eni.id} is not attached to instance ${opts.instanceId}`);
      }
    } else {
      const inst = this.instance(opts.instanceId!);
      if (inst.state !== 'running' && inst.state !== 'pending' && inst.state !== 'stopped') {
        throw new AwsError('IncorrectInstanceState', `The instance '${inst.id}' is not in a valid state for this operation.`);
      }
      eni = this.networkInterface(inst.eniId);
    }
    if (address.association && address.association.networkInterfaceId !== eni.id && !opts.allowReassociation) {
      throw new AwsError('Resource.AlreadyAssociated', `resource ${address.allocationId} is already associated with associate-id ${address.association.id}`);
    }
    // An interface holds one address: the one it had (EIP or auto-assigned) leaves.
    const previous = this.addressOn(eni.id);
    if (previous && previous !== address) previous.association = undefined;
    if (address.association && address.association.networkInterfaceId !== eni.id) this.unmap(address);
    eni.publicIp = undefined;
    address.association = { id: this.env.ids.next('eipassoc'), networkInterfaceId: eni.id };
    this.env.changed();
    return address.association.id;
  }

  /** Detaches an EIP from its interface; the interface gets an auto-assigned address back if it was launched with one. */
  private unmap(address: Address): void {
    const eniId = address.association?.networkInterfaceId;
    address.association = undefined;
    const eni = eniId ? this.networkInterfaces.get(eniId) : undefined;
    if (eni?.wantsPublicIp && !eni.publicIp) eni.publicIp = this.env.publicIps.auto();
  }

  disassociateAddress(opts: { associationId?: string | undefined; publicIp?: string | undefined }): void {
    let address: Address | undefined;
    if (opts.associationId) {
      address = [...this.addresses.values()].find((a) => a.association?.id === opts.associationId);
      if (!address) throw new AwsError('InvalidAssociationID.NotFound', `The association ID '${opts.associationId}' does not exist`);
    } else if (opts.publicIp) {
      address = [...this.addresses.values()].find((a) => a.publicIp === opts.publicIp);
      if (!address) throw new AwsError('InvalidAddress.NotFound', `Address '${opts.publicIp}' not found.`);
      if (!address.association) return;
    } else throw missingParameter('AssociationId');
    this.unmap(address);
    this.env.changed();
  }

  // ------------------------------------------------------------------ key pairs, images

  importKeyPair(name: string, publicKey: string, fingerprint: string, type: string, tags?: Tags): KeyPair {
    if (this.keyPairs.has(name)) throw new AwsError('InvalidKeyPair.Duplicate', `The keypair '${name}' already exists.`);
    const k: KeyPair = { id: this.env.ids.next('key'), name, type, fingerprint, publicKey, created: new Date(this.env.clock.now()) };
    this.keyPairs.set(name, k);
    if (tags) this.setTags(k.id, tags);
    return k;
  }

  deleteKeyPair(name: string): void {
    const k = this.keyPairs.get(name);
    if (k) {
      this.keyPairs.delete(name);
      this.forgetTags(k.id);
    }
  }

  registerImage(img: Omit<Image, 'created'>): Image {
    const image = { ...img, created: new Date(this.env.clock.now()) };
    this.images.set(image.id, image);
    return image;
  }

  // ------------------------------------------------------------------ launch templates

  createLaunchTemplate(name: string, data: LaunchTemplateData, tags?: Tags, description?: string): LaunchTemplate {
    if (!/^[a-zA-Z0-9().\-/_]{3,128}$/.test(name)) {
      throw invalidParameterValue(`Value (${name}) for parameter launchTemplateName is invalid. A launch template name must be between 3 and 128 characters, and may contain letters, numbers, and the following characters: - ( ) . / _.'`);
    }
    if ([...this.launchTemplates.values()].some((t) => t.name === name)) {
      throw new AwsError('InvalidLaunchTemplateName.AlreadyExistsException', `Launch template name already in use.`);
    }
    const now = new Date(this.env.clock.now());
    const lt: LaunchTemplate = { id: this.env.ids.next('lt'), name, created: now, versions: [{ number: 1, data, created: now, description }], defaultVersion: 1 };
    this.launchTemplates.set(lt.id, lt);
    if (tags) this.setTags(lt.id, tags);
    return lt;
  }

  createLaunchTemplateVersion(id: string, data: LaunchTemplateData, description?: string): LaunchTemplateVersion {
    const lt = this.launchTemplate({ id });
    const v = { number: Math.max(...lt.versions.map((x) => x.number)) + 1, data, created: new Date(this.env.clock.now()), description };
    lt.versions.push(v);
    return v;
  }

  setDefaultLaunchTemplateVersion(id: string, version: number): void {
    const lt = this.launchTemplate({ id });
    this.launchTemplateVersion(lt, String(version));
    lt.defaultVersion = version;
  }

  deleteLaunchTemplate(id: string): void {
    this.launchTemplate({ id });
    this.forget(this.launchTemplates, id);
  }

  // ------------------------------------------------------------------ instances

  /**
   * Creates an instance in `pending` with its primary interface and address,
   * as RunInstances and Auto Scaling do. Making it `running` is `boot()`.
   */
  launchInstance(req: LaunchRequest): Instance {
    const { env } = this;
    const subnet = this.subnet(req.subnetId);
    const image = this.image(req.imageId);
    const typeArch = instanceTypeArchitecture(req.instanceType);
    if (!typeArch) throw invalidParameterValue(`Invalid value '${req.instanceType}' for InstanceType.`);
    if (typeArch !== image.architecture) {
      throw invalidParameterValue(
        `The architecture '${typeArch}' of the specified instance type does not match the architecture '${image.architecture}' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.`,
      );
    }
    if (req.keyName !== undefined) this.keyPair(req.keyName);
    if (req.metadata?.instanceMetadataTags === 'enabled') for (const key of req.tags?.keys() ?? []) checkMetadataTagKey(key);
    let profile: Instance['iamInstanceProfile'];
    if (req.iamInstanceProfile) {
      const p = env.iam.findInstanceProfile(req.iamInstanceProfile);
      if (!p) {
        const field = req.iamInstanceProfile.startsWith('arn:') ? 'arn' : 'name';
        throw invalidParameterValue(`Value (${req.iamInstanceProfile}) for parameter iamInstanceProfile.${field} is invalid. Invalid IAM Instance Profile ${field}`);
      }
      profile = { arn: p.arn, id: p.id };
    }
    const groups = req.securityGroupIds?.length ? req.securityGroupIds : [this.vpc(subnet.vpcId).defaultSecurityGroupId];
    for (const g of groups) {
      const sg = this.securityGroup(g);
      if (sg.vpcId !== subnet.vpcId) throw invalidParameterValue(`Security group ${g} and subnet ${subnet.id} belong to different networks.`);
    }
    if (!isOffered(req.instanceType, subnet.az)) throw unsupportedInAz(req.instanceType, subnet.az, env.azs);
    if (env.faults.isLaunchBlocked(subnet.az)) {
      throw new AwsError(
        'InsufficientInstanceCapacity',
        `We currently do not have sufficient ${req.instanceType} capacity in the Availability Zone you requested (${subnet.az}). Our system will be working on provisioning additional capacity. You can currently get ${req.instanceType} capacity by not specifying an Availability Zone in your request or choosing ${env.azs.filter((a) => a !== subnet.az).join(', ')}.`,
        500,
      );
    }
    const privateIp = this.allocatePrivateIp(subnet);
    const id = env.ids.next('i');
    const wantsPublicIp = req.associatePublicIp ?? subnet.mapPublicIpOnLaunch;
    const eni: NetworkInterface = {
      id: env.ids.next('eni'),
      subnetId: subnet.id,
      vpcId: subnet.vpcId,
      az: subnet.az,
      privateIp,
      mac: env.ids.mac(),
      sourceDestCheck: true,
      groups,
      description: '',
      wantsPublicIp,
      publicIp: wantsPublicIp ? env.publicIps.auto() : undefined,
      attachment: { id: env.ids.next('eni-attach'), instanceId: id, deviceIndex: 0, deleteOnTermination: true, attachTime: new Date(env.clock.now()) },
    };
    this.networkInterfaces.set(eni.id, eni);
    const instance: Instance = {
      id,
      reservationId: env.ids.next('r'),
      imageId: image.id,
      instanceType: req.instanceType,
      architecture: image.architecture,
      state: 'pending',
      stateTransitionReason: '',
      az: subnet.az,
      subnetId: subnet.id,
      vpcId: subnet.vpcId,
      eniId: eni.id,
      privateIp,
      mac: eni.mac,
      launchTime: new Date(env.clock.now()),
      keyName: req.keyName,
      iamInstanceProfile: profile,
      metadata: {
        httpTokens: req.metadata?.httpTokens ?? 'optional',
        httpPutResponseHopLimit: req.metadata?.httpPutResponseHopLimit ?? 1,
        httpEndpoint: req.metadata?.httpEndpoint ?? 'enabled',
        instanceMetadataTags: req.metadata?.instanceMetadataTags ?? 'disabled',
      },
      userData: req.userData,
      groups,
      launchTemplate: req.launchTemplate,
      clientToken: req.clientToken,
    };
    this.instances.set(id, instance);
    if (req.tags?.size) this.setTags(id, req.tags);
    if (req.interfaceTags?.size) this.setTags(eni.id, req.interfaceTags);
    env.changed();
    return instance;
  }

  /** What the data plane needs to make the instance exist. */
  launchSpec(instance: Instance): LaunchSpec {
    const subnet = this.subnet(instance.subnetId);
    const vpc = this.vpc(instance.vpcId);
    return {
      instanceId: instance.id,
      az: instance.az,
      subnetId: subnet.id,
      subnetCidr: subnet.cidr,
      privateIp: instance.privateIp,
      mac: instance.mac,
      networkInterfaceId: instance.eniId,
      vpcCidrs: vpc.cidrs.map((c) => c.cidr),
      tags: Object.fromEntries(this.tagsOf(instance.id)),
      ...(instance.userData ? { userData: Buffer.from(instance.userData, 'base64').toString('utf8') } : {}),
    };
  }

  /**
   * Hands a pending instance to the launcher and marks it running when that
   * resolves. If the launcher fails the instance is terminated (as an instance
   * that fails to start is) and the error rethrown.
   */
  async boot(id: string): Promise<void> {
    const inst = this.instance(id);
    if (inst.state !== 'pending') return;
    inst.bootedAt = this.env.clock.now();
    try {
      await this.env.launcher.launch(this.launchSpec(inst));
    } catch (err) {
      inst.stateReason = { code: 'Server.InternalError', message: 'Server.InternalError: Internal error on launch' };
      await this.terminate(id, 'Server.InternalError');
      throw err;
    }
    if (inst.state !== 'pending') return;
    inst.state = 'running';
    inst.runningAt = this.env.clock.now();
    this.env.changed();
  }

  /**
   * shutting-down (the data plane tears the instance down), then terminated:
   * the primary interface is deleted (routes to it become blackholes), its
   * Elastic IP is disassociated. Idempotent; resolves when terminated.
   */
  terminate(id: string, reason = 'User initiated'): Promise<void> {
    const inst = this.instance(id);
    const running = this.terminations.get(id);
    if (running) return running;
    if (inst.state === 'terminated') return Promise.resolve();
    const { env } = this;
    inst.state = 'shutting-down';
    inst.stateTransitionReason = `${reason} (${gmt(env.clock.now())})`;
    if (!inst.stateReason) inst.stateReason = { code: 'Client.UserInitiatedShutdown', message: 'Client.UserInitiatedShutdown: User initiated shutdown' };
    env.changed();
    for (const l of this.shuttingDownListeners) l(inst);
    const done = (async () => {
      try {
        await env.launcher.terminate(id);
      } catch (err) {
        env.log(`launcher.terminate(${id}) failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      await env.clock.sleep(env.latency.instanceShutdown());
      inst.state = 'terminated';
      inst.terminatedAt = env.clock.now();
      const eni = this.networkInterfaces.get(inst.eniId);
      if (eni) {
        const addr = this.addressOn(eni.id);
        if (addr) addr.association = undefined;
        this.forget(this.networkInterfaces, eni.id);
      }
      env.changed();
    })();
    this.terminations.set(id, done);
    void done.finally(() => this.terminations.delete(id));
    return done;
  }

  /**
   * The instance crashed in place. Its state stays `running` and routes to it stay
   * `active`, as on AWS; only its status checks notice (DescribeInstanceStatus).
   */
  crash(id: string): void {
    const inst = this.liveInstance(id);
    if (inst.crashedAt !== undefined) return;
    inst.crashedAt = this.env.clock.now();
    this.env.clock.schedule(this.env.statusCheckDelayMs, () => {
      if (inst.state !== 'running') return;
      this.env.log(`instance ${id}: status checks failed (impaired)`);
      for (const l of this.impairedListeners) l(inst);
    });
  }

  /**
   * The instance's status checks as DescribeInstanceStatus reports them. Only a running
   * instance has them: `initializing` until its first check (the status-check delay after it
   * started running), then `ok`; `impaired` from the first check after a crash in place,
   * which is the status-check delay after the crash. A crash is an instance failure (kernel
   * panic, hang, exhausted memory, or hardware seen from inside): the instance check fails,
   * the system check stays as it was.
   */
  instanceStatus(inst: Instance): InstanceStatusView {
    if (inst.state !== 'running') return { instance: 'not-applicable', system: 'not-applicable' };
    const now = this.env.clock.now();
    const delay = this.env.statusCheckDelayMs;
    const started = inst.runningAt ?? now;
    const system = now < started + delay ? 'initializing' : 'ok';
    if (inst.crashedAt !== undefined && now >= inst.crashedAt + delay) {
      return { instance: 'impaired', system, impairedSince: new Date(Math.max(inst.crashedAt + delay, started)) };
    }
    return { instance: now < started + delay ? 'initializing' : 'ok', system };
  }

  /** Calls `fn` when a running instance's status checks turn `impaired`. */
  onImpaired(fn: (instance: Instance) => void): void {
    this.impairedListeners.push(fn);
  }

  /**
   * Calls `fn` whenever an instance leaves `running` (or `pending`) for `shutting-down`: from
   * then on EC2 no longer reports it running, which is what Auto Scaling's EC2 health check looks at.
   */
  onShuttingDown(fn: (instance: Instance) => void): void {
    this.shuttingDownListeners.push(fn);
  }

  setSourceDestCheck(target: { instanceId?: string | undefined; networkInterfaceId?: string | undefined }, value: boolean): void {
    const eni = target.networkInterfaceId ? this.networkInterface(target.networkInterfaceId) : this.networkInterface(this.liveInstance(target.instanceId!).eniId);
    eni.sourceDestCheck = value;
    this.env.changed();
  }

  /** An instance that still has its interface (not terminated). */
  liveInstance(id: string): Instance {
    const inst = this.instance(id);
    if (inst.state === 'terminated') throw new AwsError('IncorrectInstanceState', `The instance '${id}' is not in a valid state for this operation.`);
    return inst;
  }

  /** Forgets instances terminated more than an hour ago, as EC2 stops listing them. */
  pruneTerminated(): void {
    const cutoff = this.env.clock.now() - 3_600_000;
    for (const inst of [...this.instances.values()]) {
      if (inst.state === 'terminated' && (inst.terminatedAt ?? 0) < cutoff) this.forget(this.instances, inst.id);
    }
  }

  /** The instance that owns a private address (the lab identifies IMDS callers this way). */
  instanceByPrivateIp(ip: string): Instance | undefined {
    const n = parseIp(ip);
    if (n === undefined) return undefined;
    let found: Instance | undefined;
    for (const inst of this.instances.values()) {
      if (inst.state === 'terminated' || inst.privateIp !== ip) continue;
      if (!found || inst.launchTime >= found.launchTime) found = inst;
    }
    return found;
  }

  /** Whether an address lies in any VPC of this region (used by IMDS diagnostics). */
  inAnyVpc(ip: string): boolean {
    const n = parseIp(ip);
    return n !== undefined && [...this.vpcs.values()].some((v) => v.cidrs.some((c) => containsIp(parseCidr(c.cidr)!, n)));
  }

  static isId(s: string): boolean {
    return ID.test(s);
  }
}

/** EC2's default quota of IPv4 CIDR blocks per VPC (VPC User Guide, "Amazon VPC quotas"). */
export const VPC_IPV4_CIDR_LIMIT = 5;

const PRIVATE_BLOCKS = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16'] as const;

/** The RFC 1918 block a range lies in, if any. */
function privateBlockOf(c: { base: number; prefix: number }): string | undefined {
  return PRIVATE_BLOCKS.find((b) => containsCidr(parseCidr(b)!, c));
}

/** EC2 names protocols by number or name and answers with names; `-1` (and `all`) is every protocol. */
function normaliseProtocol(p: string | undefined): string {
  const v = (p ?? '-1').toLowerCase();
  return ({ '6': 'tcp', '17': 'udp', '1': 'icmp', all: '-1' } as Record<string, string>)[v] ?? v;
}
