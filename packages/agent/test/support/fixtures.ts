/**
 * The NAT that the agent unit tests run as: its identity, its configuration (HA on, the
 * defaults) and HA settings with the defaults' timings and no forward probe. Tests that
 * need something else spread these and override the field.
 */
import { HA_PORT } from '@hanat/core';
import { HA_DEFAULTS, type Config } from '../../src/config.js';
import type { HaSettings } from '../../src/ha/runtime.js';
import type { Identity } from '../../src/identity.js';

export const IDENTITY: Identity = {
  instanceId: 'i-0123456789abcdef0',
  region: 'us-east-1',
  az: 'us-east-1a',
  mac: '02:00:00:00:00:01',
  eniId: 'eni-0ccccccccccccccc1',
  subnetId: 'subnet-0aaaaaaaaaaaaaaa1',
  vpcId: 'vpc-0bbbbbbbbbbbbbbb1',
  vpcCidrs: ['10.0.0.0/16'],
  privateIp: '10.0.0.10',
  tags: { 'hanat:stack': 'prod', 'hanat:az': 'us-east-1a' },
};

export const CONFIG: Config = {
  stack: 'prod',
  az: IDENTITY.az,
  logLevel: 'debug',
  intervalMs: 5_000,
  routeIntervalMs: 30_000,
  recheckIntervalMs: 300_000,
  maxFailures: 3,
  skipSourceDest: false,
  ...HA_DEFAULTS,
  from: {},
};

export const HA_SETTINGS: HaSettings = {
  port: HA_PORT,
  heartbeatIntervalMs: 200,
  peerTimeoutMs: 800,
  healthIntervalMs: 1_000,
  healthTimeoutMs: 800,
  rise: 3,
  fall: 3,
  failbackDelayMs: 30_000,
  failbackMaxMs: 600_000,
  forwardProbe: false,
};
