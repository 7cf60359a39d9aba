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

const canRun = requireRoot('unit privileges', ['ip', 'setpriv', 'nft', 'iptables-nft']);
// A uid from systemd's DynamicUser range (61184-65519), unused on the host.
const DYNAMIC_UID = '61184';

/** The capabilities the unit grants, as setpriv spells them: ["net_admin"]. */
function unitAmbientCaps(): string[] {
  const unit = readFileSync(join(REPO, 'scripts/systemd/hanat-agent.service'), 'utf8');
  const line = /^AmbientCapabilities=(.*)$/m.exec(unit);
  if (!line) throw new Error('hanat-agent.service has no AmbientCapabilities line');
  return line[1]!.trim().split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase());
}

// What the agent does to the host, done the way the agent does it: from Node,
// sysctls through /proc/sys, netfilter through child processes.
const PROBE = `
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');
const results = {};
const attempt = (name, fn) => { try { fn(); results[name] = 'ok'; } catch (e) { results[name] = String(e.message).split('\\n')[0]; } };
const sysctl = (path, value) => { fs.writeFileSync(path, value); if (fs.readFileSync(path, 'utf8').trim() !== value) throw new Error('read back differs'); };
attempt('ip_forward', () => sysctl('/proc/sys/net/ipv4/ip_forward', '1'));
attempt('send_redirects', () => sysctl('/proc/sys/net/ipv4/conf/all/send_redirects', '0'));
attempt('nft', () => {
  execFileSync('nft', ['add', 'table', 'ip', 'hanat_probe'], { stdio: 'pipe' });
  execFileSync('nft', ['add chain ip hanat_probe postrouting { type nat hook postrouting priority srcnat; }'], { stdio: 'pipe' });
  execFileSync('nft', ['add rule ip hanat_probe postrouting ip saddr 10.99.0.0/16 masquerade comment "hanat"'], { stdio: 'pipe' });
});
attempt('iptables_nft', () => {
  execFileSync('iptables-nft', ['-t', 'nat', '-N', 'HANAT_PROBE'], { stdio: 'pipe' });
  execFileSync('iptables-nft', ['-t', 'nat', '-A', 'HANAT_PROBE', '-s', '10.99.0.0/16', '-m', 'comment', '--comment', 'hanat', '-j', 'MASQUERADE'], { stdio: 'pipe' });
  execFileSync('iptables-nft', ['-t', 'nat', '-A', 'POSTROUTING', '-j', 'HANAT_PROBE'], { stdio: 'pipe' });
});
attempt('conntrack_timeout', () => sysctl('/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established', '350'));
attempt('meminfo', () => { if (!/MemTotal:/.test(fs.readFileSync('/proc/meminfo', 'utf8'))) throw new Error('no MemTotal'); });
// Outside /proc/sys/net: writing the current value back, so success would change nothing.
attempt('vm_sysctl', () => { const p = '/proc/sys/vm/swappiness'; fs.writeFileSync(p, fs.readFileSync(p, 'utf8')); });
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

  const probeAs = (caps: string[]): Record<string, string> => {
    const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
    const r = run('ip', [
      'netns', 'exec', ns,
      'setpriv', `--reuid=${DYNAMIC_UID}`, `--regid=${DYNAMIC_UID}`, '--clear-groups',
      `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs',
      process.execPath, probe,
    ], testEnv({ HOME: '/' }));
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Record<string, string>;
  };

  it('grants only CAP_NET_ADMIN', () => {
    expect(unitAmbientCaps()).toEqual(['net_admin']);
  });

  it("is enough for the agent's sysctls and NAT rules, from child processes too", () => {
    const results = probeAs(unitAmbientCaps());
    expect(results).toMatchObject({ ip_forward: 'ok', send_redirects: 'ok', nft: 'ok', iptables_nft: 'ok', conntrack_timeout: 'ok', meminfo: 'ok' });
    // The rules landed in the namespace's ruleset.
    const ruleset = run('ip', ['netns', 'exec', ns, 'nft', 'list', 'ruleset']).stdout;
    expect(ruleset).toContain('table ip hanat_probe');
    expect(ruleset).toMatch(/10\.99\.0\.0\/16.*(masquerade|MASQUERADE)/);
  });

  it('does not let the agent write sysctls outside /proc/sys/net', () => {
    expect(probeAs(unitAmbientCaps()).vm_sysctl).not.toBe('ok');
  });

  it('fails without the capability (control)', () => {
    const results = probeAs([]);
    for (const op of ['ip_forward', 'nft', 'iptables_nft']) expect(results[op], op).not.toBe('ok');
    expect(results.meminfo).toBe('ok');
  });
});
