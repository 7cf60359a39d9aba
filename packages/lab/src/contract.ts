/**
 * The contract between the lab's control plane (src/emulator/**) and its data plane
 * (src/dataplane/**). The emulator owns the in-memory AWS world; the data plane turns
 * it into network namespaces. Neither imports the other's internals: only this file.
 *
 * Change this file only by agreement of both sides (tell the lead).
 */

/** Where a route sends packets, resolved by the emulator from the route's target. */
export type RouteTarget =
  | { kind: 'local' }
  | { kind: 'igw'; gatewayId: string }
  /** An ENI target; `instanceId` and `privateIp` are absent when the ENI is detached or its instance is gone. */
  | { kind: 'eni'; networkInterfaceId: string; instanceId?: string; privateIp?: string }
  /** A route whose target no longer exists (AWS state `blackhole`): drops. */
  | { kind: 'blackhole' };

export interface NetRoute {
  destinationCidr: string;
  target: RouteTarget;
}

export interface NetSubnet {
  subnetId: string;
  vpcId: string;
  cidr: string;
  az: string;
  /** The route table that governs traffic from this subnet (explicit association, else the VPC's main table). */
  routeTableId: string;
  /** `public` / `private` from the `network` tag, if any. */
  network?: string;
}

export interface NetInstance {
  instanceId: string;
  state: 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';
  az: string;
  subnetId: string;
  privateIp: string;
  /** Primary ENI. */
  networkInterfaceId: string;
  mac: string;
  sourceDestCheck: boolean;
  /** The public address the internet sees: the associated EIP, else the auto-assigned public IP. */
  publicIp?: string;
  /**
   * What the security groups of its primary interface admit, as address ranges (a rule that
   * names a group is resolved to that group's interfaces). Absent: the data plane does not
   * filter traffic to it (an instance the emulator does not know).
   */
  ingress?: NetIngressRule[];
}

/** One security group ingress rule, resolved: `protocol` is `-1` (all), `tcp`, `udp`, `icmp` or a number. */
export interface NetIngressRule {
  protocol: string;
  /** Absent: every port (or ICMP type). */
  fromPort?: number;
  toPort?: number;
  cidr: string;
}

/** A consistent snapshot of everything the data plane needs, taken at `version`. */
export interface NetworkSnapshot {
  /** Monotonic; increases on every change that affects the data plane. */
  version: number;
  vpcs: { vpcId: string; cidrs: string[] }[];
  subnets: NetSubnet[];
  routeTables: { routeTableId: string; vpcId: string; routes: NetRoute[] }[];
  instances: NetInstance[];
}

/** What the emulator offers the data plane. */
export interface NetworkView {
  snapshot(): NetworkSnapshot;
  /**
   * Called synchronously after every change that affects the data plane
   * (routes, associations, instance state, source/dest check, addresses).
   * Returns an unsubscribe function.
   */
  onChange(listener: (snapshot: NetworkSnapshot) => void): () => void;
}

/** What the emulator needs to boot and kill instances: the data plane implements it. */
export interface InstanceLauncher {
  /**
   * Makes the instance exist (namespace, link, agent process). Called by the Auto Scaling
   * emulation after its boot delay; the emulator marks the instance `running` when this
   * resolves, or terminates it if this rejects.
   */
  launch(instance: LaunchSpec): Promise<void>;
  /** Removes the instance's namespace and processes. Idempotent. */
  terminate(instanceId: string): Promise<void>;
}

export interface LaunchSpec {
  instanceId: string;
  az: string;
  subnetId: string;
  subnetCidr: string;
  privateIp: string;
  mac: string;
  networkInterfaceId: string;
  vpcCidrs: string[];
  /** The instance's tags (from the launch template and the group's propagated tags). */
  tags: Record<string, string>;
  /** The user data the launch template gave, decoded. */
  userData?: string;
}

/**
 * IMDS and the AWS API are served by one HTTP server. Paths under `/latest/` are IMDS;
 * everything else is the AWS API. IMDS identifies the calling instance by this header,
 * which the lab's in-namespace proxy sets from the connection's source address
 * (unit tests may set it directly, or use LAB_INSTANCE_HEADER).
 */
export const LAB_SOURCE_IP_HEADER = 'x-hanat-lab-source-ip';
/** Unit-test mode: names the calling instance directly. */
export const LAB_INSTANCE_HEADER = 'x-hanat-lab-instance-id';
