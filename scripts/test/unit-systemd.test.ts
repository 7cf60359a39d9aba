/**
 * hanat-agent.service under a real systemd: the test boots the host's systemd
 * (252 on Debian 12, the version Amazon Linux 2023 ships) in a container with
 * its own network namespace (systemd-nspawn --private-network, a volatile
 * root), installs the unit there, and runs a stand-in agent that does what
 * the agent does to the host. Only ExecStart's Node binary differs from the
 * unit the image gets (the host's node instead of /usr/bin/node-22).
 *
 * It shows what reading the unit cannot: the sandbox (DynamicUser,
 * CAP_NET_ADMIN only, the system call filter, the read-only system) still
 * lets the agent set net sysctls, write nftables rules through child
 * processes and use the network; exit code 2 is not restarted; a crash loop
 * stops at the start limit; SIGTERM reaches the agent and it can drain. The
 * last case runs the real agent bundle against a fake IMDS on loopback.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, requireTools, run, testEnv } from './support.js';

const canRun = requireTools('hanat-agent.service under systemd', ['systemd-nspawn', 'nft', 'iptables-nft', 'sysctl'], { root: true });
const UNIT_SOURCE = join(REPO, 'scripts/systemd/hanat-agent.service');
const BUNDLE = join(REPO, 'packages/agent/dist/hanat-agent.cjs');

/** Waits (bounded) for the agent to stop, then records its state and journal for the test. */
const COLLECT = `[Unit]
After=hanat-agent.service
[Service]
Type=oneshot
ExecStart=/bin/sh -c '\\
  if [ -e /opt/hanat/stop-when ]; then \\
    for i in $(seq 1 200); do journalctl -u hanat-agent.service -o cat | grep -qF -f /opt/hanat/stop-when && break; sleep 0.1; done; \\
    nft list ruleset > /results/ruleset.txt 2>&1; \\
    systemctl stop hanat-agent.service; \\
  fi; \\
  for i in $(seq 1 200); do s=$(systemctl is-active hanat-agent.service); \\
    case $s in active|activating|deactivating) sleep 0.1 ;; *) break ;; esac; done; \\
  journalctl -u hanat-agent.service -o cat > /results/journal.txt; \\
  systemctl show hanat-agent.service -p Result -p ExecMainStatus -p NRestarts -p ActiveState > /results/show.txt; \\
  systemctl poweroff'
`;

const TARGET = `[Unit]
Description=hanat unit test
Requires=basic.target
After=basic.target
Wants=hanat-agent.service collect.service
AllowIsolate=yes
`;

/** An IMDSv2 on loopback that answers what the agent reads at start-up. */
const FAKE_IMDS = `
const http = require('node:http');
const mac = '02:00:00:00:00:01';
const base = 'network/interfaces/macs/' + mac + '/';
const data = {
  'instance-id': 'i-0123456789abcdef0', 'placement/region': 'eu-west-1', 'placement/availability-zone': 'eu-west-1a',
  mac, 'local-ipv4': '10.0.0.10', 'tags/instance': 'hanat:stack\\nhanat:az',
  'tags/instance/hanat:stack': 'unit-test', 'tags/instance/hanat:az': 'eu-west-1a',
  [base + 'subnet-id']: 'subnet-0123456789abcdef0', [base + 'vpc-id']: 'vpc-0123456789abcdef0',
  [base + 'vpc-ipv4-cidr-blocks']: '10.0.0.0/16\\n100.64.0.0/16', [base + 'interface-id']: 'eni-0123456789abcdef0', [base + 'local-ipv4s']: '10.0.0.10',
};
http.createServer((req, res) => {
  if (req.method === 'PUT' && req.url === '/latest/api/token') return res.end('token');
  if (req.headers['x-aws-ec2-metadata-token'] !== 'token') { res.statusCode = 401; return res.end(); }
  const v = data[decodeURI(req.url.replace('/latest/meta-data/', ''))];
  if (v === undefined) { res.statusCode = 404; return res.end(); }
  res.end(v);
}).listen(8100, '127.0.0.1');
`;

const FAKE_IMDS_UNIT = `[Unit]
Before=hanat-agent.service
[Service]
ExecStart=${process.execPath} /opt/hanat/fake-imds.cjs
ExecStartPost=/bin/bash -c 'for i in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/8100) 2>/dev/null && exit 0; sleep 0.1; done; exit 1'
`;

interface Outcome {
  show: Record<string, string>;
  journal: string[];
  /** `nft list ruleset` in the container, when the unit was stopped by `stopWhen`. */
  ruleset?: string | undefined;
}

describe.runIf(canRun)('hanat-agent.service under systemd (nspawn container)', { timeout: 120_000 }, () => {
  let work: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'hanat-unit-'));
    chmodSync(work, 0o755);
    for (const d of ['opt', 'results', 'units']) mkdirSync(join(work, d));
    chmodSync(join(work, 'opt'), 0o755);
    const unit = readFileSync(UNIT_SOURCE, 'utf8');
    const patched = unit.replace(/^ExecStart=\/usr\/bin\/node-22 /m, `ExecStart=${process.execPath} `);
    expect(patched).not.toBe(unit);
    writeFileSync(join(work, 'units/hanat-agent.service'), patched);
    writeFileSync(join(work, 'units/collect.service'), COLLECT);
    writeFileSync(join(work, 'units/hanat-test.target'), TARGET);
  });

  afterEach(() => {
    rmSync(work, { recursive: true, force: true });
  });

  /** Boots the container with `agent` as /opt/hanat/hanat-agent.cjs; returns the unit's final state and journal. */
  /**
   * Boots the container with `agent` (source text, or { file }) as /opt/hanat/hanat-agent.cjs.
   * `stopWhen`: stop the unit once its journal has this text (the ruleset is recorded first).
   */
  const boot = (
    agent: string | { file: string },
    opts: { dropIn?: string; stopWhen?: string; fakeImds?: boolean } = {},
  ): Outcome => {
    const dest = join(work, 'opt/hanat-agent.cjs');
    if (typeof agent === 'string') writeFileSync(dest, agent);
    else copyFileSync(agent.file, dest);
    chmodSync(dest, 0o644);
    if (opts.stopWhen) writeFileSync(join(work, 'opt/stop-when'), `${opts.stopWhen}\n`);
    const units = ['hanat-agent.service', 'collect.service', 'hanat-test.target'];
    if (opts.fakeImds) {
      writeFileSync(join(work, 'opt/fake-imds.cjs'), FAKE_IMDS);
      writeFileSync(join(work, 'units/fake-imds.service'), FAKE_IMDS_UNIT);
      writeFileSync(join(work, 'units/hanat-test.target'), TARGET.replace('Wants=', 'Wants=fake-imds.service '));
      units.push('fake-imds.service');
    }
    const binds = [
      `--bind-ro=${join(work, 'opt')}:/opt/hanat`,
      `--bind=${join(work, 'results')}:/results`,
      ...units.map((u) => `--bind-ro=${join(work, 'units', u)}:/etc/systemd/system/${u}`),
    ];
    if (opts.dropIn) {
      writeFileSync(join(work, 'units/test.conf'), opts.dropIn);
      binds.push(`--bind-ro=${join(work, 'units/test.conf')}:/etc/systemd/system/hanat-agent.service.d/test.conf`);
    }
    const r = run(
      'timeout',
      [
        '90',
        'systemd-nspawn', '--quiet', '--volatile=yes', '--directory=/', '--private-network', '--register=no', '--keep-unit',
        ...binds,
        '--boot', 'systemd.firstboot=off', 'systemd.mask=systemd-networkd-wait-online.service', 'systemd.unit=hanat-test.target',
      ],
      testEnv({ SYSTEMD_NSPAWN_TMPFS_TMP: '1' }),
    );
    let show: string;
    try {
      show = readFileSync(join(work, 'results/show.txt'), 'utf8');
    } catch {
      throw new Error(`the container recorded no result (exit ${r.status}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
    }
    const ruleset = join(work, 'results/ruleset.txt');
    return {
      show: Object.fromEntries(show.trim().split('\n').map((l) => l.split('=', 2) as [string, string])),
      journal: readFileSync(join(work, 'results/journal.txt'), 'utf8').trim().split('\n'),
      ruleset: existsSync(ruleset) ? readFileSync(ruleset, 'utf8') : undefined,
    };
  };

  it('lets the agent set net sysctls, write NAT rules and use the network, and nothing more', () => {
    const probe = `
const fs = require('node:fs');
const http = require('node:http');
const dgram = require('node:dgram');
const { execFileSync } = require('node:child_process');
const results = {};
const attempt = async (name, fn) => { try { await fn(); results[name] = 'ok'; } catch (e) { results[name] = String(e.stderr || e.message).trim().split('\\n')[0]; } };
const sh = (file, args, input) => execFileSync(file, args, { input, stdio: 'pipe', encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
const sysctl = (key, value) => { sh('sysctl', ['-w', key + '=' + value]); const now = sh('sysctl', ['-n', key]).trim(); if (now !== value) throw new Error(key + ' is ' + now); };
(async () => {
  const status = fs.readFileSync('/proc/self/status', 'utf8');
  results.uid = process.getuid();
  results.capEff = /CapEff:\\s+(\\w+)/.exec(status)[1];
  results.noNewPrivs = /NoNewPrivs:\\s+(\\d)/.exec(status)[1];
  await attempt('ip_forward', () => sysctl('net.ipv4.ip_forward', '1'));
  await attempt('send_redirects', () => sysctl('net.ipv4.conf.all.send_redirects', '0'));
  await attempt('nft', () => sh('nft', ['-f', '-'], 'add table ip hanat\\nadd chain ip hanat postrouting { type nat hook postrouting priority srcnat; policy accept; }\\nadd rule ip hanat postrouting ip saddr 10.0.0.0/16 masquerade comment "hanat"\\n'));
  await attempt('nft_read', () => { if (!sh('nft', ['-j', 'list', 'table', 'ip', 'hanat']).includes('masquerade')) throw new Error('rule not listed'); });
  await attempt('iptables_nft', () => sh('iptables-nft', ['-t', 'nat', '-S']));
  await attempt('conntrack_timeout', () => sysctl('net.netfilter.nf_conntrack_tcp_timeout_established', '7440'));
  await attempt('ip_link', () => JSON.parse(sh('ip', ['-j', 'link', 'show'])));
  await attempt('meminfo', () => { if (!fs.readFileSync('/proc/meminfo', 'utf8').includes('MemTotal:')) throw new Error('no MemTotal'); });
  await attempt('http', () => new Promise((resolve, reject) => {
    const server = http.createServer((_q, s) => s.end('pong')).listen(0, '127.0.0.1', () => {
      http.get({ host: '127.0.0.1', port: server.address().port, path: '/' }, (res) => {
        let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => { server.close(); body === 'pong' ? resolve() : reject(new Error(body)); });
      }).on('error', reject);
    });
  }));
  await attempt('udp', () => new Promise((resolve, reject) => {
    const a = dgram.createSocket('udp4'); const b = dgram.createSocket('udp4');
    b.on('message', (m) => { a.close(); b.close(); m.toString() === 'hb' ? resolve() : reject(new Error('bad')); });
    b.bind(0, '127.0.0.1', () => a.send('hb', b.address().port, '127.0.0.1', (e) => e && reject(e)));
  }));
  await attempt('write_opt', () => fs.writeFileSync('/opt/hanat/x', 'x'));
  await attempt('write_etc', () => fs.writeFileSync('/etc/hanat-test', 'x'));
  await attempt('read_root_home', () => fs.readdirSync('/root'));
  await attempt('vm_sysctl', () => sysctl('vm.swappiness', sh('sysctl', ['-n', 'vm.swappiness']).trim()));
  console.log(JSON.stringify(results));
})();
`;
    const { show, journal } = boot(probe);
    expect(show.Result, journal.join('\n')).toBe('success');
    const results = JSON.parse(journal.find((l) => l.startsWith('{'))!) as Record<string, string | number>;
    expect(results).toMatchObject({
      ip_forward: 'ok',
      send_redirects: 'ok',
      nft: 'ok',
      nft_read: 'ok',
      iptables_nft: 'ok',
      conntrack_timeout: 'ok',
      ip_link: 'ok',
      meminfo: 'ok',
      http: 'ok',
      udp: 'ok',
    });
    // A dynamic, unprivileged user holding CAP_NET_ADMIN (bit 12) and nothing else, with no_new_privs.
    expect(results.uid).toBeGreaterThanOrEqual(61184);
    expect(results.capEff).toBe('0000000000001000');
    expect(results.noNewPrivs).toBe('1');
    // The read-only system.
    for (const denied of ['write_opt', 'write_etc', 'read_root_home', 'vm_sysctl']) expect(results[denied], denied).not.toBe('ok');
  });

  it('does not restart the agent after a configuration error (exit 2)', () => {
    const { show, journal } = boot(`console.log('hanat-agent: bad configuration'); process.exit(2);`, { dropIn: '[Service]\nRestartSec=100ms\n' });
    expect(journal).toContain('hanat-agent: bad configuration');
    expect(show).toMatchObject({ Result: 'exit-code', ExecMainStatus: '2', NRestarts: '0', ActiveState: 'failed' });
  });

  it('restarts a failing agent, then gives up at the start limit', () => {
    const unit = readFileSync(UNIT_SOURCE, 'utf8');
    const burst = Number(/^StartLimitBurst=(\d+)$/m.exec(unit)![1]);
    // Only RestartSec is shortened, so the loop hits the limit within the test.
    const { show, journal } = boot(`console.log('crash'); process.exit(1);`, { dropIn: '[Service]\nRestartSec=100ms\n' });
    // Started exactly StartLimitBurst times; the next scheduled restart hit the limit and the unit stayed failed.
    expect(journal.filter((l) => l === 'crash')).toHaveLength(burst);
    expect(show).toMatchObject({ Result: 'exit-code', ExecMainStatus: '1', ActiveState: 'failed', NRestarts: String(burst) });
  });

  it('delivers SIGTERM to the agent so it can stop cleanly, and counts a clean exit as success', () => {
    const agent = `
process.on('SIGTERM', () => { console.log('draining'); setTimeout(() => { console.log('drained'); process.exit(0); }, 200); });
console.log('ready');
setInterval(() => {}, 1000);
`;
    const { show, journal } = boot(agent, { stopWhen: 'ready' });
    expect(journal).toEqual(expect.arrayContaining(['ready', 'draining', 'drained']));
    expect(show).toMatchObject({ Result: 'success', ExecMainStatus: '0', NRestarts: '0' });
  });

  it('runs the real agent bundle: it reads IMDS, makes the kernel a NAT and stops cleanly on SIGTERM', () => {
    if (!existsSync(BUNDLE)) {
      const msg = `${BUNDLE} is not built (node scripts/build.mjs agent)`;
      if (process.env.CI === 'true') throw new Error(msg);
      console.warn(`skipped: ${msg}`);
      return;
    }
    // Endpoints and fake credentials only: the sandbox is the unit's own.
    const dropIn = [
      '[Unit]',
      'After=fake-imds.service',
      '[Service]',
      'Environment=AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:8100',
      'Environment=AWS_ENDPOINT_URL=http://127.0.0.1:9',
      'Environment=AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=test-secret-not-real',
      // The container does not hold the private address the fake IMDS names, which the
      // heartbeat socket binds; HA is tested in the lab (e2e-ha), the unit and its sandbox here.
      'Environment=HANAT_HA=0',
      '',
    ].join('\n');
    const { show, journal, ruleset } = boot({ file: BUNDLE }, { dropIn, fakeImds: true, stopWhen: '"event":"kernel.configured"' });
    const events = journal.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { event?: string }).event);
    expect(events, journal.join('\n')).toContain('kernel.configured');
    // Its AWS calls got as far as the network (the endpoint is a closed port).
    expect(journal.join('\n')).toContain('ECONNREFUSED');
    expect(journal.join('\n')).not.toContain('uv_os_homedir');
    // hanat's NAT table, written by the agent from inside the sandbox.
    expect(ruleset).toContain('table ip hanat');
    expect(ruleset).toContain('10.0.0.0/16');
    expect(ruleset).toContain('100.64.0.0/16');
    expect(ruleset).toMatch(/masquerade/);
    expect(show).toMatchObject({ Result: 'success', NRestarts: '0' });
  });
});
