/**
 * The unit runs the agent as an unprivileged (dynamic) user whose only
 * capability is what AmbientCapabilities grants, with no_new_privs. This test
 * proves on the real kernel that this is enough for the agent's host work:
 * it runs a Node process with exactly those credentials (setpriv) in a
 * network namespace it creates, and has it set the net sysctls and write NAT
 * rules through nft and iptables-nft (child processes, as the agent spawns
 * them). A control run without the capability must fail, and the same
 * credentials must not be able to write sysctls outside /proc/sys/net.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRoot } from '../../test-support/root.js';
import { REPO, run, testEnv } from './support.js';

const canRun = requireRoot('unit privileges', ['ip', 'setpriv', 'nft', 'iptables-nft', 'sysctl']);
// A uid from systemd's DynamicUser range (61184-65519), unused on the host.
const DYNAMIC_UID = '61184';

/** The capabilities the unit grants, as setpriv spells them: ["net_admin"]. */
function unitAmbientCaps(): string[] {
  const unit = readFileSync(join(REPO, 'scripts/systemd/hanat-agent.service'), 'utf8');
  const line = /^AmbientCapabilities=(.*)$/m.exec(unit);
  if (!line) throw new Error('hanat-agent.service has no AmbientCapabilities line');
  return line[1]!.trim().split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase());
}

// What the agent does to the host, done the way packages/agent/src/kernel.ts
// does it: child processes (sysctl, nft, ip) spawned from Node.
const PROBE = `
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const results = {};
const attempt = (name, fn) => { try { fn(); results[name] = 'ok'; } catch (e) { results[name] = String(e.stderr || e.message).trim().split('\\n')[0]; } };
const sh = (file, args, input) => execFileSync(file, args, { input, stdio: 'pipe', encoding: 'utf8' });
const sysctl = (key, value) => {
  sh('sysctl', ['-w', key + '=' + value]);
  const now = sh('sysctl', ['-n', key]).trim();
  if (now !== value) throw new Error(key + ' is ' + now + ' after writing ' + value);
};
const current = (key) => sh('sysctl', ['-n', key]).trim();
if (process.argv[2] === 'init-ns') {
  // Global conntrack sizing, writable only in the initial namespace: write the
  // current values back, so success changes nothing on this host.
  attempt('conntrack_max', () => sysctl('net.netfilter.nf_conntrack_max', current('net.netfilter.nf_conntrack_max')));
  attempt('conntrack_buckets', () => sysctl('net.netfilter.nf_conntrack_buckets', current('net.netfilter.nf_conntrack_buckets')));
} else {
  attempt('ip_forward', () => sysctl('net.ipv4.ip_forward', '1'));
  attempt('send_redirects', () => sysctl('net.ipv4.conf.all.send_redirects', '0'));
  attempt('nft', () => sh('nft', ['-f', '-'], [
    'add table ip hanat_probe',
    'add chain ip hanat_probe postrouting { type nat hook postrouting priority srcnat; policy accept; }',
    'add rule ip hanat_probe postrouting ip saddr 10.99.0.0/16 masquerade comment "hanat"',
  ].join('\\n') + '\\n'));
  attempt('iptables_nft', () => {
    sh('iptables-nft', ['-t', 'nat', '-N', 'HANAT_PROBE']);
    sh('iptables-nft', ['-t', 'nat', '-A', 'HANAT_PROBE', '-s', '10.98.0.0/16', '-m', 'comment', '--comment', 'hanat', '-j', 'MASQUERADE']);
  });
  attempt('conntrack_timeout', () => sysctl('net.netfilter.nf_conntrack_tcp_timeout_established', '7440'));
  attempt('ip_link', () => JSON.parse(sh('ip', ['-j', 'link', 'show'])));
  attempt('meminfo', () => { if (!/MemTotal:/.test(fs.readFileSync('/proc/meminfo', 'utf8'))) throw new Error('no MemTotal'); });
  // Outside /proc/sys/net: the current value written back, so success would change nothing.
  attempt('vm_sysctl', () => sysctl('vm.swappiness', current('vm.swappiness')));
}
process.stdout.write(JSON.stringify(results));
`;

describe.runIf(canRun)('hanat-agent.service privileges on the real kernel', () => {
  const ns = `hanat-ami-priv-${process.pid}`;
  let work: string;
  let probe: string;

  beforeAll(() => {
    execFileSync('ip', ['netns', 'add', ns]);
    work = mkdtempSync(join(tmpdir(), 'hanat-priv-'));
    chmodSync(work, 0o755);
    probe = join(work, 'probe.cjs');
    writeFileSync(probe, PROBE);
    chmodSync(probe, 0o644);
  });

  afterAll(() => {
    run('ip', ['netns', 'del', ns]);
    rmSync(work, { recursive: true, force: true });
  });

  /** Runs the probe as the unit would run the agent; in the test's namespace unless `initNs`. */
  const probeAs = (caps: string[], initNs = false): Record<string, string> => {
    const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
    const setpriv = ['setpriv', `--reuid=${DYNAMIC_UID}`, `--regid=${DYNAMIC_UID}`, '--clear-groups', `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs'];
    const argv = initNs ? [...setpriv, process.execPath, probe, 'init-ns'] : ['ip', 'netns', 'exec', ns, ...setpriv, process.execPath, probe];
    const r = run(argv[0]!, argv.slice(1), testEnv({ HOME: '/', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }));
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, string>;
  };

  it('grants only CAP_NET_ADMIN', () => {
    expect(unitAmbientCaps()).toEqual(['net_admin']);
  });

  it("is enough for the agent's sysctls and NAT rules, from child processes too", () => {
    const results = probeAs(unitAmbientCaps());
    expect(results).toMatchObject({ ip_forward: 'ok', send_redirects: 'ok', nft: 'ok', iptables_nft: 'ok', conntrack_timeout: 'ok', ip_link: 'ok', meminfo: 'ok' });
    // The rules landed in the namespace's ruleset.
    const ruleset = run('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset']).stdout;
    expect(ruleset).toContain('table ip hanat_probe');
    expect(ruleset).toMatch(/10\.99\.0\.0\/16.*masquerade/);
    expect(ruleset).toMatch(/10\.98\.0\.0\/16.*(masquerade|MASQUERADE)/);
  });

  it('is enough to size conntrack, which only the initial namespace allows', () => {
    expect(probeAs(unitAmbientCaps(), true)).toEqual({ conntrack_max: 'ok', conntrack_buckets: 'ok' });
  });

  it('does not let the agent write sysctls outside /proc/sys/net', () => {
    expect(probeAs(unitAmbientCaps()).vm_sysctl).not.toBe('ok');
  });

  it('fails without the capability (control)', () => {
    const results = probeAs([]);
    for (const op of ['ip_forward', 'send_redirects', 'nft', 'iptables_nft', 'conntrack_timeout']) expect(results[op], op).not.toBe('ok');
    expect(probeAs([], true).conntrack_max).not.toBe('ok');
    expect(results.meminfo).toBe('ok');
  });
});
