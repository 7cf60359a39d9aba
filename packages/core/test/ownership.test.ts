import { describe, expect, it } from 'vitest';
import { defaultRoute, isPrivateTable, ownerTags, routeOwner, routeTarget, servingAz } from '../src/index.js';

const tags = (o: Record<string, string>) => Object.entries(o).map(([Key, Value]) => ({ Key, Value }));

describe('route ownership', () => {
  it('serves a table from its own AZ unless hanat:override pins it elsewhere', () => {
    expect(servingAz(tags({ 'hanat:az': 'us-east-1a' }))).toBe('us-east-1a');
    expect(servingAz(tags({ 'hanat:az': 'us-east-1a', 'hanat:override': 'us-east-1b' }))).toBe('us-east-1b');
    expect(servingAz(tags({ 'hanat:az': 'us-east-1a', 'hanat:override': ' ' }))).toBe('us-east-1a');
    expect(servingAz(tags({ network: 'private' }))).toBeUndefined();
  });

  it('recognises private tables by the network tag', () => {
    expect(isPrivateTable(tags({ network: 'private' }))).toBe(true);
    expect(isPrivateTable(tags({ network: 'public' }))).toBe(false);
  });

  it('finds the default route among the others', () => {
    const table = { Routes: [{ DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local' }, { DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: 'eni-1' }] };
    expect(defaultRoute(table)).toEqual({ DestinationCidrBlock: '0.0.0.0/0', NetworkInterfaceId: 'eni-1' });
    expect(defaultRoute({ Routes: [] })).toBeUndefined();
  });

  it('reads and writes the owner tags, the reason among them', () => {
    const at = new Date('2030-01-01T00:00:00.000Z');
    const written = ownerTags('i-0123456789abcdef0', at, 'peer-down');
    expect(written).toEqual([
      { Key: 'hanat:owner', Value: 'i-0123456789abcdef0' },
      { Key: 'hanat:owner-since', Value: '2030-01-01T00:00:00.000Z' },
      { Key: 'hanat:owner-reason', Value: 'peer-down' },
    ]);
    expect(routeOwner(written)).toEqual({ instanceId: 'i-0123456789abcdef0', since: at.getTime(), reason: 'peer-down' });
    expect(routeOwner(tags({ 'hanat:owner': 'i-1', 'hanat:owner-since': 'yesterday' }))).toEqual({ instanceId: 'i-1', since: undefined, reason: undefined });
    expect(routeOwner(tags({}))).toBeUndefined();
  });

  it('reads an owner reason it does not know (a newer hanat wrote it) as none', () => {
    expect(routeOwner(tags({ 'hanat:owner': 'i-1', 'hanat:owner-reason': 'solar-flare' }))?.reason).toBeUndefined();
    expect(routeOwner(tags({ 'hanat:owner': 'i-1', 'hanat:owner-reason': 'shutdown' }))?.reason).toBe('shutdown');
  });
});

describe('routeTarget', () => {
  it('names every kind of target a default route can have by its id', () => {
    expect(routeTarget({ NetworkInterfaceId: 'eni-1', InstanceId: 'i-1' })).toBe('eni-1');
    expect(routeTarget({ GatewayId: 'igw-1' })).toBe('igw-1');
    expect(routeTarget({ NatGatewayId: 'nat-1' })).toBe('nat-1');
    expect(routeTarget({ TransitGatewayId: 'tgw-0123' })).toBe('tgw-0123');
    expect(routeTarget({ VpcPeeringConnectionId: 'pcx-0123' })).toBe('pcx-0123');
    expect(routeTarget({ EgressOnlyInternetGatewayId: 'eigw-0123' })).toBe('eigw-0123');
    expect(routeTarget({ LocalGatewayId: 'lgw-0123' })).toBe('lgw-0123');
    expect(routeTarget({ CarrierGatewayId: 'cagw-0123' })).toBe('cagw-0123');
    expect(routeTarget({ CoreNetworkArn: 'arn:aws:networkmanager::1:core-network/cn-1' })).toBe('arn:aws:networkmanager::1:core-network/cn-1');
    expect(routeTarget({})).toBe('unknown');
  });
});
