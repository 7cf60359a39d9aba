/**
 * The EC2 world as the API shows it: internal records → SDK output shapes.
 * Fields are those EC2 returns (API Reference "Response Elements" of each
 * Describe call), so code written against real responses finds them here.
 */
import type {
  Address as SdkAddress,
  AvailabilityZone,
  Image as SdkImage,
  Instance as SdkInstance,
  InstanceNetworkInterface,
  InternetGateway as SdkInternetGateway,
  KeyPairInfo,
  LaunchTemplate as SdkLaunchTemplate,
  LaunchTemplateVersion,
  NetworkInterface as SdkNetworkInterface,
  RouteTable as SdkRouteTable,
  SecurityGroup as SdkSecurityGroup,
  Subnet as SdkSubnet,
  Vpc as SdkVpc,
} from '@aws-sdk/client-ec2';
import { azId, privateDnsName as regionPrivateDnsName, publicDnsName as regionPublicDnsName } from '../env.js';
import { tagList } from '../tags.js';
import { STATE_CODE, type Address, type Ec2, type Image, type Instance, type KeyPair, type LaunchTemplate, type NetworkInterface, type RouteTable, type SecurityGroup, type Subnet, type Vpc } from './state.js';

function tagsOrUndefined(ec2: Ec2, id: string) {
  const list = tagList(ec2.tags.get(id));
  return list.length ? list : undefined;
}

export function renderVpc(ec2: Ec2, v: Vpc): SdkVpc {
  return {
    VpcId: v.id,
    OwnerId: ec2.env.accountId,
    State: 'available',
    CidrBlock: v.cidr,
    CidrBlockAssociationSet: v.cidrs.map((c) => ({ AssociationId: c.associationId, CidrBlock: c.cidr, CidrBlockState: { State: 'associated' } })),
    DhcpOptionsId: v.dhcpOptionsId,
    InstanceTenancy: v.instanceTenancy as SdkVpc['InstanceTenancy'],
    IsDefault: false,
    Tags: tagsOrUndefined(ec2, v.id),
  };
}

export function renderSubnet(ec2: Ec2, s: Subnet): SdkSubnet {
  return {
    SubnetId: s.id,
    SubnetArn: `arn:aws:ec2:${ec2.env.region}:${ec2.env.accountId}:subnet/${s.id}`,
    VpcId: s.vpcId,
    CidrBlock: s.cidr,
    AvailabilityZone: s.az,
    AvailabilityZoneId: azId(ec2.env.region, s.az),
    AvailableIpAddressCount: ec2.availableAddresses(s),
    DefaultForAz: false,
    MapPublicIpOnLaunch: s.mapPublicIpOnLaunch,
    MapCustomerOwnedIpOnLaunch: false,
    AssignIpv6AddressOnCreation: false,
    Ipv6CidrBlockAssociationSet: [],
    OwnerId: ec2.env.accountId,
    State: 'available',
    EnableDns64: false,
    Ipv6Native: false,
    PrivateDnsNameOptionsOnLaunch: { HostnameType: 'ip-name', EnableResourceNameDnsARecord: false, EnableResourceNameDnsAAAARecord: false },
    Tags: tagsOrUndefined(ec2, s.id),
  };
}

export function renderRouteTable(ec2: Ec2, rt: RouteTable): SdkRouteTable {
  return {
    RouteTableId: rt.id,
    VpcId: rt.vpcId,
    OwnerId: ec2.env.accountId,
    PropagatingVgws: [],
    Associations: rt.associations.map((a) => ({
      RouteTableAssociationId: a.id,
      RouteTableId: rt.id,
      Main: a.main,
      ...(a.subnetId ? { SubnetId: a.subnetId } : {}),
      AssociationState: { State: 'associated' },
    })),
    Routes: rt.routes.map((r) => {
      const eni = r.networkInterfaceId ? ec2.networkInterfaces.get(r.networkInterfaceId) : undefined;
      const inst = eni ? ec2.attachedInstance(eni) : undefined;
      return {
        DestinationCidrBlock: r.destination,
        ...(r.gatewayId ? { GatewayId: r.gatewayId } : {}),
        ...(r.networkInterfaceId ? { NetworkInterfaceId: r.networkInterfaceId } : {}),
        ...(inst && inst.state !== 'terminated' ? { InstanceId: inst.id, InstanceOwnerId: ec2.env.accountId } : {}),
        Origin: r.origin,
        State: ec2.routeState(rt, r),
      };
    }),
    Tags: tagsOrUndefined(ec2, rt.id) ?? [],
  };
}

export function renderInternetGateway(ec2: Ec2, igw: { id: string; vpcId?: string | undefined }): SdkInternetGateway {
  return {
    InternetGatewayId: igw.id,
    OwnerId: ec2.env.accountId,
    // EC2 reports an attached internet gateway as `available` (outside the SDK's AttachmentStatus enum).
    Attachments: igw.vpcId ? [{ VpcId: igw.vpcId, State: 'available' as 'attached' }] : [],
    Tags: tagsOrUndefined(ec2, igw.id) ?? [],
  };
}

export function renderSecurityGroup(ec2: Ec2, sg: SecurityGroup): SdkSecurityGroup {
  return {
    GroupId: sg.id,
    GroupName: sg.name,
    Description: sg.description,
    VpcId: sg.vpcId,
    OwnerId: ec2.env.accountId,
    SecurityGroupArn: `arn:aws:ec2:${ec2.env.region}:${ec2.env.accountId}:security-group/${sg.id}`,
    IpPermissions: sg.ingress,
    IpPermissionsEgress: sg.egress,
    Tags: tagsOrUndefined(ec2, sg.id),
  };
}

function privateDnsName(ec2: Ec2, ip: string): string {
  return regionPrivateDnsName(ec2.env.region, ip);
}

function publicDnsName(ec2: Ec2, ip: string | undefined): string {
  return ip ? regionPublicDnsName(ec2.env.region, ip) : '';
}

function eniAssociation(ec2: Ec2, eni: NetworkInterface) {
  const eip = ec2.addressOn(eni.id);
  if (eip) return { PublicIp: eip.publicIp, PublicDnsName: publicDnsName(ec2, eip.publicIp), IpOwnerId: ec2.env.accountId, AllocationId: eip.allocationId, AssociationId: eip.association?.id };
  if (eni.publicIp) return { PublicIp: eni.publicIp, PublicDnsName: publicDnsName(ec2, eni.publicIp), IpOwnerId: 'amazon' };
  return undefined;
}

export function renderNetworkInterface(ec2: Ec2, eni: NetworkInterface): SdkNetworkInterface {
  const association = eniAssociation(ec2, eni);
  const inst = ec2.attachedInstance(eni);
  return {
    NetworkInterfaceId: eni.id,
    SubnetId: eni.subnetId,
    VpcId: eni.vpcId,
    AvailabilityZone: eni.az,
    Description: eni.description,
    InterfaceType: 'interface',
    MacAddress: eni.mac,
    OwnerId: ec2.env.accountId,
    PrivateIpAddress: eni.privateIp,
    PrivateDnsName: privateDnsName(ec2, eni.privateIp),
    PrivateIpAddresses: [{ Primary: true, PrivateIpAddress: eni.privateIp, PrivateDnsName: privateDnsName(ec2, eni.privateIp), ...(association ? { Association: association } : {}) }],
    RequesterManaged: false,
    SourceDestCheck: eni.sourceDestCheck,
    Status: eni.attachment ? 'in-use' : 'available',
    Groups: eni.groups.map((g) => ({ GroupId: g, GroupName: ec2.securityGroups.get(g)?.name })),
    Ipv6Addresses: [],
    ...(association ? { Association: association } : {}),
    ...(eni.attachment
      ? {
          Attachment: {
            AttachmentId: eni.attachment.id,
            AttachTime: eni.attachment.attachTime,
            DeleteOnTermination: eni.attachment.deleteOnTermination,
            DeviceIndex: eni.attachment.deviceIndex,
            NetworkCardIndex: 0,
            InstanceId: eni.attachment.instanceId,
            InstanceOwnerId: ec2.env.accountId,
            Status: inst && inst.state !== 'terminated' ? 'attached' : 'detaching',
          },
        }
      : {}),
    TagSet: tagsOrUndefined(ec2, eni.id) ?? [],
  };
}

function instanceInterface(ec2: Ec2, eni: NetworkInterface): InstanceNetworkInterface {
  const association = eniAssociation(ec2, eni);
  return {
    NetworkInterfaceId: eni.id,
    SubnetId: eni.subnetId,
    VpcId: eni.vpcId,
    Description: eni.description,
    InterfaceType: 'interface',
    MacAddress: eni.mac,
    OwnerId: ec2.env.accountId,
    PrivateIpAddress: eni.privateIp,
    PrivateDnsName: privateDnsName(ec2, eni.privateIp),
    PrivateIpAddresses: [{ Primary: true, PrivateIpAddress: eni.privateIp, PrivateDnsName: privateDnsName(ec2, eni.privateIp), ...(association ? { Association: association } : {}) }],
    SourceDestCheck: eni.sourceDestCheck,
    Status: 'in-use',
    Groups: eni.groups.map((g) => ({ GroupId: g, GroupName: ec2.securityGroups.get(g)?.name })),
    Ipv6Addresses: [],
    ...(association ? { Association: { PublicIp: association.PublicIp, PublicDnsName: association.PublicDnsName, IpOwnerId: association.IpOwnerId } } : {}),
    ...(eni.attachment
      ? {
          Attachment: {
            AttachmentId: eni.attachment.id,
            AttachTime: eni.attachment.attachTime,
            DeleteOnTermination: eni.attachment.deleteOnTermination,
            DeviceIndex: eni.attachment.deviceIndex,
            NetworkCardIndex: 0,
            Status: 'attached',
          },
        }
      : {}),
  };
}

export function renderInstance(ec2: Ec2, i: Instance): SdkInstance {
  const eni = ec2.networkInterfaces.get(i.eniId);
  const live = i.state !== 'terminated';
  const publicIp = eni && live ? ec2.publicIpOf(eni) : undefined;
  return {
    InstanceId: i.id,
    ImageId: i.imageId,
    InstanceType: i.instanceType as SdkInstance['InstanceType'],
    Architecture: i.architecture as SdkInstance['Architecture'],
    State: { Code: STATE_CODE[i.state], Name: i.state },
    StateTransitionReason: i.stateTransitionReason,
    ...(i.stateReason ? { StateReason: { Code: i.stateReason.code, Message: i.stateReason.message } } : {}),
    LaunchTime: i.launchTime,
    AmiLaunchIndex: 0,
    Placement: { AvailabilityZone: i.az, AvailabilityZoneId: azId(ec2.env.region, i.az), GroupName: '', Tenancy: 'default' },
    Monitoring: { State: 'disabled' },
    ...(live
      ? {
          SubnetId: i.subnetId,
          VpcId: i.vpcId,
          PrivateIpAddress: i.privateIp,
          PrivateDnsName: privateDnsName(ec2, i.privateIp),
          PublicDnsName: publicDnsName(ec2, publicIp),
          ...(publicIp ? { PublicIpAddress: publicIp } : {}),
          SourceDestCheck: eni?.sourceDestCheck ?? true,
          NetworkInterfaces: eni ? [instanceInterface(ec2, eni)] : [],
          SecurityGroups: i.groups.map((g) => ({ GroupId: g, GroupName: ec2.securityGroups.get(g)?.name })),
        }
      : { PrivateDnsName: '', PublicDnsName: '', NetworkInterfaces: [], SecurityGroups: [] }),
    ...(i.keyName ? { KeyName: i.keyName } : {}),
    ...(i.iamInstanceProfile ? { IamInstanceProfile: { Arn: i.iamInstanceProfile.arn, Id: i.iamInstanceProfile.id } } : {}),
    ...(i.clientToken ? { ClientToken: i.clientToken } : {}),
    RootDeviceType: 'ebs',
    RootDeviceName: '/dev/xvda',
    BlockDeviceMappings: [],
    VirtualizationType: 'hvm',
    Hypervisor: 'xen',
    EbsOptimized: false,
    EnaSupport: true,
    CpuOptions: { CoreCount: 1, ThreadsPerCore: 2 },
    PlatformDetails: 'Linux/UNIX',
    UsageOperation: 'RunInstances',
    BootMode: 'uefi-preferred',
    CurrentInstanceBootMode: 'uefi',
    MetadataOptions: {
      State: live ? 'applied' : 'pending',
      HttpTokens: i.metadata.httpTokens,
      HttpPutResponseHopLimit: i.metadata.httpPutResponseHopLimit,
      HttpEndpoint: i.metadata.httpEndpoint,
      HttpProtocolIpv6: 'disabled',
      InstanceMetadataTags: i.metadata.instanceMetadataTags,
    },
    Tags: tagsOrUndefined(ec2, i.id),
  };
}

export function renderAddress(ec2: Ec2, a: Address): SdkAddress {
  const eni = a.association ? ec2.networkInterfaces.get(a.association.networkInterfaceId) : undefined;
  const inst = eni ? ec2.attachedInstance(eni) : undefined;
  return {
    AllocationId: a.allocationId,
    PublicIp: a.publicIp,
    Domain: 'vpc',
    PublicIpv4Pool: 'amazon',
    NetworkBorderGroup: ec2.env.region,
    ...(a.association && eni
      ? {
          AssociationId: a.association.id,
          NetworkInterfaceId: eni.id,
          NetworkInterfaceOwnerId: ec2.env.accountId,
          PrivateIpAddress: eni.privateIp,
          ...(inst && inst.state !== 'terminated' ? { InstanceId: inst.id } : {}),
        }
      : {}),
    Tags: tagsOrUndefined(ec2, a.allocationId),
  };
}

export function renderKeyPair(ec2: Ec2, k: KeyPair): KeyPairInfo {
  return {
    KeyPairId: k.id,
    KeyName: k.name,
    KeyType: k.type as KeyPairInfo['KeyType'],
    KeyFingerprint: k.fingerprint,
    CreateTime: k.created,
    Tags: tagsOrUndefined(ec2, k.id) ?? [],
  };
}

export function renderImage(ec2: Ec2, img: Image): SdkImage {
  return {
    ImageId: img.id,
    Name: img.name,
    Description: img.description,
    Architecture: img.architecture,
    CreationDate: img.created.toISOString(),
    ImageLocation: `${ec2.env.accountId}/${img.name}`,
    ImageType: 'machine',
    Public: false,
    OwnerId: ec2.env.accountId,
    PlatformDetails: 'Linux/UNIX',
    UsageOperation: 'RunInstances',
    State: 'available',
    RootDeviceType: 'ebs',
    RootDeviceName: '/dev/xvda',
    VirtualizationType: 'hvm',
    Hypervisor: 'xen',
    EnaSupport: true,
    BootMode: 'uefi-preferred',
    ImdsSupport: 'v2.0',
    BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { DeleteOnTermination: true, VolumeSize: 2, VolumeType: 'gp3', Encrypted: false, SnapshotId: `snap-${img.id.slice(4)}` } }],
    Tags: tagsOrUndefined(ec2, img.id),
  };
}

export function renderAvailabilityZone(ec2: Ec2, az: string): AvailabilityZone {
  return {
    ZoneName: az,
    ZoneId: azId(ec2.env.region, az),
    State: 'available',
    RegionName: ec2.env.region,
    ZoneType: 'availability-zone',
    GroupName: ec2.env.region,
    GroupLongName: ec2.env.region,
    NetworkBorderGroup: ec2.env.region,
    OptInStatus: 'opt-in-not-required',
    Messages: [],
  };
}

export function renderLaunchTemplate(ec2: Ec2, lt: LaunchTemplate): SdkLaunchTemplate {
  return {
    LaunchTemplateId: lt.id,
    LaunchTemplateName: lt.name,
    CreateTime: lt.created,
    CreatedBy: `arn:aws:iam::${ec2.env.accountId}:root`,
    DefaultVersionNumber: lt.defaultVersion,
    LatestVersionNumber: Math.max(...lt.versions.map((v) => v.number)),
    Tags: tagsOrUndefined(ec2, lt.id),
  };
}

export function renderLaunchTemplateVersion(ec2: Ec2, lt: LaunchTemplate, n: number): LaunchTemplateVersion {
  const v = lt.versions.find((x) => x.number === n)!;
  return {
    LaunchTemplateId: lt.id,
    LaunchTemplateName: lt.name,
    VersionNumber: v.number,
    VersionDescription: v.description,
    CreateTime: v.created,
    CreatedBy: `arn:aws:iam::${ec2.env.accountId}:root`,
    DefaultVersion: lt.defaultVersion === v.number,
    LaunchTemplateData: v.data,
  };
}
