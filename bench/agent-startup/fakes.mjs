// Loopback stand-ins for IMDSv2 and the EC2 Query API, just enough for the
// agent's start-up calls (and the AWS CLI's), so the benchmark measures the
// agent, not the network. Used only by bench/agent-startup/run.mjs.
import dgram from 'node:dgram';
import http from 'node:http';

export const IDENTITY = {
  instanceId: 'i-0be0c0ffee0000001',
  region: 'us-east-1',
  az: 'us-east-1a',
  mac: '02:00:00:00:be:01',
  eniId: 'eni-0be0c0ffee0000001',
  otherEni: 'eni-0be0c0ffee0000002',
  subnetId: 'subnet-0be0c0ffee000001',
  vpcId: 'vpc-0be0c0ffee000001',
  vpcCidr: '10.0.0.0/16',
  privateIp: '10.0.0.10',
  stack: 'bench',
  routeTableId: 'rtb-0be0c0ffee000001',
  allocationId: 'eipalloc-0be0c0ffee00001',
  publicIp: '198.51.100.7',
};

/** The stack's other NATs, one per AZ, as EC2 lists them and as their heartbeats say. */
export const PEERS = [
  { instanceId: 'i-0be0c0ffee0000002', az: 'us-east-1b', privateIp: '10.0.1.10', eniId: 'eni-0be0c0ffee0000003' },
  { instanceId: 'i-0be0c0ffee0000003', az: 'us-east-1c', privateIp: '10.0.2.10', eniId: 'eni-0be0c0ffee0000004' },
];
/** The heartbeat port (the agent's default, docs/ha.md). */
export const HA_PORT = 4242;

const ROLE = 'hanat-nat';

function metadata() {
  const m = IDENTITY;
  const base = `network/interfaces/macs/${m.mac}`;
  return {
    'instance-id': m.instanceId,
    'placement/region': m.region,
    'placement/availability-zone': m.az,
    mac: m.mac,
    'local-ipv4': m.privateIp,
    [`${base}/subnet-id`]: m.subnetId,
    [`${base}/vpc-id`]: m.vpcId,
    [`${base}/vpc-ipv4-cidr-blocks`]: m.vpcCidr,
    [`${base}/interface-id`]: m.eniId,
    [`${base}/local-ipv4s`]: m.privateIp,
    'tags/instance': 'hanat:stack\nhanat:az\nName',
    'tags/instance/hanat:stack': m.stack,
    'tags/instance/hanat:az': m.az,
    'tags/instance/Name': 'nat-bench',
    'iam/security-credentials/': ROLE,
    [`iam/security-credentials/${ROLE}`]: JSON.stringify({
      Code: 'Success',
      LastUpdated: new Date().toISOString(),
      Type: 'AWS-HMAC',
      AccessKeyId: 'ASIABENCHFAKEFAKE',
      SecretAccessKey: 'bench-fake-secret',
      Token: 'bench-fake-token',
      Expiration: new Date(Date.now() + 6 * 3600_000).toISOString(),
    }),
  };
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)));
}

export async function startImds() {
  const data = metadata();
  const tokens = new Set();
  const server = http.createServer((req, res) => {
    if (req.method === 'PUT' && req.url === '/latest/api/token') {
      const t = `bench-${tokens.size + 1}`;
      tokens.add(t);
      return res.writeHead(200).end(t);
    }
    if (!tokens.has(req.headers['x-aws-ec2-metadata-token'])) return res.writeHead(401).end();
    const path = decodeURI((req.url ?? '').replace(/^\/latest\/meta-data\//, ''));
    const body = data[path];
    if (body === undefined) return res.writeHead(404).end();
    res.writeHead(200).end(body);
  });
  return { url: await listen(server), close: () => server.close() };
}

const NS = 'http://ec2.amazonaws.com/doc/2016-11-15/';
const tagSet = (tags) => `<tagSet>${Object.entries(tags).map(([k, v]) => `<item><key>${k}</key><value>${v}</value></item>`).join('')}</tagSet>`;

export async function startEc2() {
  const m = IDENTITY;
  const state = {};
  const reset = () =>
    Object.assign(state, {
      sourceDestCheck: true,
      eipEni: undefined,
      routeEni: m.otherEni,
      tableTags: { 'hanat:stack': m.stack, network: 'private', 'hanat:az': m.az },
      calls: [],
      // Every interface the route was pointed at, in order (with HA the agent hands it to a peer on SIGTERM).
      routeHistory: [],
    });
  reset();
  const instanceXml = (i) =>
    `<item><instanceId>${i.instanceId}</instanceId><instanceState><code>16</code><name>running</name></instanceState>` +
    `<privateIpAddress>${i.privateIp}</privateIpAddress><placement><availabilityZone>${i.az}</availabilityZone></placement>` +
    `<networkInterfaceSet><item><networkInterfaceId>${i.eniId}</networkInterfaceId><attachment><deviceIndex>0</deviceIndex></attachment></item></networkInterfaceSet>` +
    `${tagSet({ 'hanat:stack': m.stack, 'hanat:az': i.az })}</item>`;
  const nats = [{ instanceId: m.instanceId, az: m.az, privateIp: m.privateIp, eniId: m.eniId }, ...PEERS];
  const responses = {
    // HA's peer list (the stack's pending and running NATs) and its liveness check of one instance.
    DescribeInstances: (p) => {
      const ids = [...p.keys()].filter((k) => /^InstanceId\.\d+$/.test(k)).map((k) => p.get(k));
      const list = ids.length ? nats.filter((i) => ids.includes(i.instanceId)) : nats;
      return `<reservationSet><item><reservationId>r-0be0c0ffee0000001</reservationId><instancesSet>${list.map(instanceXml).join('')}</instancesSet></item></reservationSet>`;
    },
    DescribeInstanceAttribute: () => `<instanceId>${m.instanceId}</instanceId><sourceDestCheck><value>${state.sourceDestCheck}</value></sourceDestCheck>`,
    ModifyInstanceAttribute: (p) => {
      if (p.get('SourceDestCheck.Value') === 'false') state.sourceDestCheck = false;
      return '<return>true</return>';
    },
    DescribeAddresses: () =>
      `<addressesSet><item><publicIp>${m.publicIp}</publicIp><allocationId>${m.allocationId}</allocationId><domain>vpc</domain>` +
      (state.eipEni ? `<associationId>eipassoc-0be0c0ffee00001</associationId><networkInterfaceId>${state.eipEni}</networkInterfaceId>` : '') +
      `${tagSet({ 'hanat:stack': m.stack, 'hanat:az': m.az })}</item></addressesSet>`,
    AssociateAddress: (p) => {
      state.eipEni = p.get('NetworkInterfaceId') ?? undefined;
      return '<return>true</return><associationId>eipassoc-0be0c0ffee00001</associationId>';
    },
    DescribeRouteTables: () =>
      `<routeTableSet><item><routeTableId>${m.routeTableId}</routeTableId><vpcId>${m.vpcId}</vpcId><routeSet>` +
      `<item><destinationCidrBlock>${m.vpcCidr}</destinationCidrBlock><gatewayId>local</gatewayId><state>active</state><origin>CreateRouteTable</origin></item>` +
      `<item><destinationCidrBlock>0.0.0.0/0</destinationCidrBlock><networkInterfaceId>${state.routeEni}</networkInterfaceId><state>active</state><origin>CreateRoute</origin></item>` +
      `</routeSet>${tagSet(state.tableTags)}</item></routeTableSet>`,
    ReplaceRoute: (p) => {
      state.routeEni = p.get('NetworkInterfaceId');
      state.routeHistory.push(state.routeEni);
      return '<return>true</return>';
    },
    CreateRoute: (p) => {
      state.routeEni = p.get('NetworkInterfaceId');
      state.routeHistory.push(state.routeEni);
      return '<return>true</return>';
    },
    CreateTags: (p) => {
      for (let i = 1; p.has(`Tag.${i}.Key`); i++) state.tableTags[p.get(`Tag.${i}.Key`)] = p.get(`Tag.${i}.Value`);
      return '<return>true</return>';
    },
  };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const action = params.get('Action');
      state.calls.push(action);
      const handler = responses[action];
      if (!handler) {
        return res
          .writeHead(400, { 'content-type': 'text/xml' })
          .end(`<Response><Errors><Error><Code>InvalidAction</Code><Message>bench fake does not know ${action}</Message></Error></Errors><RequestID>bench</RequestID></Response>`);
      }
      const body = handler(params);
      res.writeHead(200, { 'content-type': 'text/xml;charset=UTF-8' }).end(`<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${NS}"><requestId>bench</requestId>${body}</${action}Response>`);
    });
  });
  return { url: await listen(server), state, reset, close: () => server.close() };
}

/**
 * The agent's two peers: each heartbeats to the agent every `intervalMs` from its own address
 * (which the bench puts on the namespace's loopback), serving and healthy, and reports the
 * agent's last heartbeat and forward probe back, as a peer agent would (docs/ha.md "Protocol").
 */
export async function startPeers(intervalMs = 200) {
  const m = IDENTITY;
  const boot = Date.now();
  const seen = { hb: 0, fp: -1, at: 0, heartbeats: 0, probes: 0 };
  const sockets = [];
  for (const peer of PEERS) {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (buf) => {
      let msg;
      try {
        msg = JSON.parse(buf.toString('utf8'));
      } catch {
        return;
      }
      if (msg.id !== m.instanceId) return;
      if (msg.k === 'hb') {
        seen.hb = msg.seq;
        seen.at = Date.now();
        seen.heartbeats++;
      } else if (msg.k === 'fp') {
        seen.fp = msg.seq;
        seen.probes++;
      }
    });
    await new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(HA_PORT, peer.privateIp, resolve);
    });
    sockets.push({ peer, socket, seq: 0 });
  }
  const send = () => {
    for (const s of sockets) {
      const others = PEERS.filter((p) => p !== s.peer).map((p) => ({ id: p.instanceId, hb: 1, fp: -1, age: 0 }));
      const self = seen.at ? [{ id: m.instanceId, hb: seen.hb, fp: seen.fp, age: Date.now() - seen.at }] : [];
      const hb = { v: 1, k: 'hb', stack: m.stack, id: s.peer.instanceId, az: s.peer.az, boot, seq: ++s.seq, state: 'serving', healthy: true, up: true, peers: [...self, ...others] };
      s.socket.send(Buffer.from(JSON.stringify(hb)), HA_PORT, m.privateIp, () => {});
    }
  };
  const timer = setInterval(send, intervalMs);
  return {
    seen,
    reset: () => Object.assign(seen, { hb: 0, fp: -1, at: 0, heartbeats: 0, probes: 0 }),
    close: () => {
      clearInterval(timer);
      for (const s of sockets) s.socket.close();
    },
  };
}
