/**
 * The emulator's side of contract.ts: a consistent snapshot of everything the
 * namespace data plane mirrors, and change notifications.
 */
import type { NetInstance, NetRoute, NetSubnet, NetworkSnapshot, RouteTarget } from '../contract.js';
import type { Ec2, Route, RouteTable } from './ec2/state.js';
import type { Region } from './region.js';

function target(ec2: Ec2, rt: RouteTable, r: Route): RouteTarget {
  if (r.gatewayId === 'local') return { kind: 'local' };
  if (ec2.routeState(rt, r) === 'blackhole' && !(r.networkInterfaceId && ec2.networkInterfaces.has(r.networkInterfaceId))) return { kind: 'blackhole' };
  if (r.gatewayId) return { kind: 'igw', gatewayId: r.gatewayId };
  if (r.networkInterfaceId) {
    const eni = ec2.networkInterfaces.get(r.networkInterfaceId);
    if (!eni) return { kind: 'blackhole' };
    const inst = ec2.attachedInstance(eni);
    if (inst && inst.state !== 'terminated') return { kind: 'eni', networkInterfaceId: eni.id, instanceId: inst.id, privateIp: eni.privateIp };
    return { kind: 'eni', networkInterfaceId: eni.id };
  }
  return { kind: 'blackhole' };
}

export function buildSnapshot(version: number, regions: readonly Region[]): NetworkSnapshot {
  const snap: NetworkSnapshot = { version, vpcs: [], subnets: [], routeTables: [], instances: [] };
  for (const region of regions) {
    const ec2 = region.ec2;
    for (const vpc of ec2.vpcs.values()) snap.vpcs.push({ vpcId: vpc.id, cidrs: vpc.cidrs.map((c) => c.cidr) });
    for (const s of ec2.subnets.values()) {
      const rt = ec2.routeTableForSubnet(s.id);
      const network = ec2.tags.get(s.id)?.get('network');
      const subnet: NetSubnet = { subnetId: s.id, vpcId: s.vpcId, cidr: s.cidr, az: s.az, routeTableId: rt?.id ?? '' };
      if (network !== undefined) subnet.network = network;
      snap.subnets.push(subnet);
    }
    for (const rt of ec2.routeTables.values()) {
      const routes: NetRoute[] = rt.routes.map((r) => ({ destinationCidr: r.destination, target: target(ec2, rt, r) }));
      snap.routeTables.push({ routeTableId: rt.id, vpcId: rt.vpcId, routes });
    }
    for (const i of ec2.instances.values()) {
      const eni = ec2.networkInterfaces.get(i.eniId);
      const inst: NetInstance = {
        instanceId: i.id,
        state: i.state,
        az: i.az,
        subnetId: i.subnetId,
        privateIp: i.privateIp,
        networkInterfaceId: i.eniId,
        mac: i.mac,
        sourceDestCheck: eni?.sourceDestCheck ?? true,
      };
      const publicIp = eni && i.state !== 'terminated' ? ec2.publicIpOf(eni) : undefined;
      if (publicIp) inst.publicIp = publicIp;
      if (eni) inst.ingress = ec2.ingressOf(eni);
      snap.instances.push(inst);
    }
  }
  return snap;
}
