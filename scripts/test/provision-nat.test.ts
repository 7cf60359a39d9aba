/**
 * scripts/provision-nat.sh run against a throw-away root directory, with the
 * package manager replaced by a recording stand-in: the files, modes, unit and
 * enablement it leaves are what the NAT image gets.
 */
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REPO, requireTools, run, testEnv, type RunResult } from './support.js';

const SCRIPT = join(REPO, 'scripts/provision-nat.sh');
const canRun = requireTools('provision-nat', ['systemctl', 'systemd-analyze', 'install', 'sha256sum'], { root: true });

/** Every entry under dir: type, owner, mode, mtime and content (or link target). */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const abs = join(dir, rel);
    const st = lstatSync(abs);
    const meta = `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.mtimeMs}`;
    if (st.isSymbolicLink()) out[rel] = `link ${readlinkSync(abs)} ${meta}`;
    else if (st.isDirectory()) {
      out[rel] = `dir ${meta}`;
      for (const e of readdirSync(abs)) walk(join(rel, e));
    } else out[rel] = `file ${createHash('sha256').update(readFileSync(abs)).digest('hex')} ${meta}`;
  };
  walk('.');
  return out;
}

function modeOf(path: string): string {
  return (lstatSync(path).mode & 0o777).toString(8);
}

describe.runIf(canRun)('provision-nat.sh in a throw-away root', { timeout: 60_000 }, () => {
  let work: string;
  let root: string;
  let bundle: string;
  let dnfLog: string;
  let fakeDnf: string;

  beforeEach(() => {
    work = mkdtempSync(join(tmpdir(), 'hanat-provision-'));
    root = join(work, 'root');
    mkdirSync(join(root, 'usr/lib/systemd/system'), { recursive: true });
    // The host's targets and slices, so systemd-analyze can resolve the unit's
    // dependencies inside the root.
    for (const f of readdirSync('/usr/lib/systemd/system')) {
      if (/\.(target|slice)$/.test(f)) cpSync(join('/usr/lib/systemd/system', f), join(root, 'usr/lib/systemd/system', f));
    }
    bundle = join(work, 'hanat-agent.cjs');
    writeFileSync(bundle, '"use strict";// stand-in for the agent bundle\n');
    dnfLog = join(work, 'dnf.log');
    // Stand-in for dnf: records its arguments and provides what nodejs22 provides.
    fakeDnf = join(work, 'fake-dnf');
    writeFileSync(
      fakeDnf,
      `#!/bin/sh
echo "$*" >> '${dnfLog}'
mkdir -p "$HANAT_ROOT/usr/bin"
[ -e "$HANAT_ROOT/usr/bin/node-22" ] || { printf '#!/bin/sh\\necho v22.12.0\\n' > "$HANAT_ROOT/usr/bin/node-22"; chmod 0755 "$HANAT_ROOT/usr/bin/node-22"; }
`,
    );
    chmodSync(fakeDnf, 0o755);
  });

  afterEach(() => {
    rmSync(work, { recursive: true, force: true });
  });

  const provision = (args: string[] = [], env: Record<string, string | undefined> = {}): RunResult =>
    run('bash', [SCRIPT, '--root', root, '--bundle', bundle, ...args], testEnv({ HANAT_PKG_INSTALL: fakeDnf, ...env }));

  it('installs Node 22 and the tools the agent runs through the package step', () => {
    const r = provision();
    expect(r.stderr).toContain('done:');
    expect(r.status).toBe(0);
    expect(readFileSync(dnfLog, 'utf8').trim().split('\n')).toEqual(['nodejs22 nftables iptables-nft iproute procps-ng']);
  });

  it('installs the bundle, unit and sysctl drop-in root-owned with the right modes', () => {
    expect(provision().status).toBe(0);
    const files: [string, string][] = [
      ['opt/hanat', '755'],
      ['opt/hanat/hanat-agent.cjs', '644'],
      ['etc/systemd/system/hanat-agent.service', '644'],
      ['etc/sysctl.d/90-hanat.conf', '644'],
    ];
    for (const [path, mode] of files) {
      const st = lstatSync(join(root, path));
      expect({ path, mode: modeOf(join(root, path)), uid: st.uid, gid: st.gid }).toEqual({ path, mode, uid: 0, gid: 0 });
    }
    expect(readFileSync(join(root, 'opt/hanat/hanat-agent.cjs'), 'utf8')).toBe(readFileSync(bundle, 'utf8'));
    expect(readFileSync(join(root, 'etc/systemd/system/hanat-agent.service'), 'utf8')).toBe(
      readFileSync(join(REPO, 'scripts/systemd/hanat-agent.service'), 'utf8'),
    );
  });

  it('enables the unit so it starts at boot without user data', () => {
    expect(provision().status).toBe(0);
    const link = join(root, 'etc/systemd/system/multi-user.target.wants/hanat-agent.service');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('/etc/systemd/system/hanat-agent.service');
    expect(run('systemctl', [`--root=${root}`, 'is-enabled', 'hanat-agent.service']).stdout.trim()).toBe('enabled');
  });

  it('installs a unit that runs the bundle with Node 22 under the hardening directives', () => {
    expect(provision().status).toBe(0);
    const unit = readFileSync(join(root, 'etc/systemd/system/hanat-agent.service'), 'utf8');
    const settings = new Map<string, string[]>();
    for (const line of unit.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
      if (m) settings.set(m[1]!, [...(settings.get(m[1]!) ?? []), m[2]!]);
    }
    const one = (key: string) => settings.get(key)?.at(-1);
    expect(one('ExecStart')).toMatch(/^\/usr\/bin\/node-22 (--[a-z0-9-]+(=\d+)? )*\/opt\/hanat\/hanat-agent\.cjs run$/);
    expect(one('Restart')).toBe('on-failure');
    expect(one('RestartPreventExitStatus')).toBe('2');
    expect(Number.parseInt(one('StartLimitBurst') ?? '', 10)).toBeGreaterThan(0);
    expect(one('StartLimitIntervalSec')).toBeDefined();
    expect(one('CapabilityBoundingSet')).toBe('CAP_NET_ADMIN');
    expect(one('AmbientCapabilities')).toBe('CAP_NET_ADMIN');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('ProtectKernelModules')).toBe('yes');
    expect(one('ProtectControlGroups')).toBe('yes');
    expect(one('LockPersonality')).toBe('yes');
    expect(one('RestrictAddressFamilies')?.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_NETLINK', 'AF_UNIX']);
    expect(one('StandardOutput')).toBe('journal');
    expect(one('After')).toContain('network-online.target');
    expect(one('Wants')).toContain('network-online.target');
    expect(one('WantedBy')).toBe('multi-user.target');
    // Not running as root: a transient user holding only CAP_NET_ADMIN.
    expect(one('DynamicUser')).toBe('yes');
    expect(settings.has('User')).toBe(false);
  });

  it('leaves a unit that systemd-analyze verify accepts without a warning', () => {
    expect(provision().status).toBe(0);
    const r = run('systemd-analyze', ['verify', `--root=${root}`, 'hanat-agent.service']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('makes systemd-analyze verify fail when Node 22 is missing from the image', () => {
    expect(provision().status).toBe(0);
    rmSync(join(root, 'usr/bin/node-22'));
    const r = run('systemd-analyze', ['verify', `--root=${root}`, 'hanat-agent.service']);
    expect(r.stderr).toContain('/usr/bin/node-22');
    expect(r.status).not.toBe(0);
  });

  it('rates the unit OK or better in systemd-analyze security', () => {
    expect(provision().status).toBe(0);
    const r = run('systemd-analyze', ['security', '--offline=yes', `--root=${root}`, '--no-pager', 'hanat-agent.service']);
    const m = /Overall exposure level for hanat-agent\.service: ([0-9.]+) (\w+)/.exec(r.stdout + r.stderr);
    expect(m, r.stdout + r.stderr).not.toBeNull();
    console.warn(`hanat-agent.service exposure: ${m![1]} ${m![2]}`);
    expect(['PERFECT', 'SAFE', 'OK']).toContain(m![2]);
  });

  it('writes the instance-independent sysctls', () => {
    expect(provision().status).toBe(0);
    const conf = readFileSync(join(root, 'etc/sysctl.d/90-hanat.conf'), 'utf8');
    const values = Object.fromEntries(
      conf
        .split('\n')
        .filter((l) => l.trim() && !l.trim().startsWith('#'))
        .map((l) => l.split('=').map((s) => s.trim()) as [string, string]),
    );
    expect(values).toMatchObject({
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.send_redirects': '0',
      'net.ipv4.conf.default.send_redirects': '0',
      'net.ipv4.conf.all.rp_filter': '2',
    });
  });

  it('changes nothing when run a second time', () => {
    expect(provision().status).toBe(0);
    const before = snapshot(root);
    const again = provision();
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('done: 0 change(s)');
    expect(snapshot(root)).toEqual(before);
  });

  it('repairs a changed unit and a wrong mode on the next run', () => {
    expect(provision().status).toBe(0);
    const unitPath = join(root, 'etc/systemd/system/hanat-agent.service');
    writeFileSync(unitPath, readFileSync(unitPath, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivileges=no'));
    chmodSync(join(root, 'opt/hanat/hanat-agent.cjs'), 0o600);
    const r = provision();
    expect(r.status).toBe(0);
    expect(readFileSync(unitPath, 'utf8')).toContain('NoNewPrivileges=yes');
    expect(modeOf(join(root, 'opt/hanat/hanat-agent.cjs'))).toBe('644');
    expect(r.stderr).toContain('done: 2 change(s)');
  });

  it('needs no cmp (diffutils is not in its package list): without it a rerun changes nothing and an edit is repaired', () => {
    // A PATH with every usual tool except cmp.
    const noCmp = join(work, 'no-cmp-bin');
    mkdirSync(noCmp);
    for (const dir of ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin']) {
      if (!existsSync(dir)) continue;
      for (const f of readdirSync(dir)) {
        if (f === 'cmp' || existsSync(join(noCmp, f))) continue;
        symlinkSync(join(dir, f), join(noCmp, f));
      }
    }
    const env = { PATH: noCmp };
    expect(run('sh', ['-c', 'command -v cmp || echo none'], testEnv(env)).stdout.trim()).toBe('none');
    expect(provision([], env).status).toBe(0);
    const before = snapshot(root);
    const again = provision([], env);
    expect(again.stderr).toContain('done: 0 change(s)');
    expect(again.status).toBe(0);
    expect(snapshot(root)).toEqual(before);

    const unitPath = join(root, 'etc/systemd/system/hanat-agent.service');
    writeFileSync(unitPath, readFileSync(unitPath, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivileges=no'));
    const repaired = provision([], env);
    expect(repaired.status).toBe(0);
    expect(repaired.stderr).toContain('installed /etc/systemd/system/hanat-agent.service');
    expect(readFileSync(unitPath, 'utf8')).toBe(readFileSync(join(REPO, 'scripts/systemd/hanat-agent.service'), 'utf8'));
  });

  it('masks the services a NAT does not need, and only those', () => {
    const units = join(root, 'usr/lib/systemd/system');
    writeFileSync(join(units, 'dnf-makecache.timer'), '[Timer]\nOnCalendar=hourly\n[Install]\nWantedBy=timers.target\n');
    mkdirSync(join(root, 'etc/systemd/system/timers.target.wants'), { recursive: true });
    symlinkSync('/usr/lib/systemd/system/dnf-makecache.timer', join(root, 'etc/systemd/system/timers.target.wants/dnf-makecache.timer'));
    writeFileSync(join(units, 'sshd.service'), '[Service]\nExecStart=/usr/sbin/sshd -D\n[Install]\nWantedBy=multi-user.target\n');
    expect(run('systemctl', [`--root=${root}`, 'enable', 'sshd.service']).status).toBe(0);

    expect(provision().status).toBe(0);
    const state = (unit: string) => run('systemctl', [`--root=${root}`, 'is-enabled', unit]).stdout.trim();
    expect(state('dnf-makecache.timer')).toBe('masked');
    expect(existsSync(join(root, 'etc/systemd/system/timers.target.wants/dnf-makecache.timer'))).toBe(false);
    expect(state('sshd.service')).toBe('enabled');
    // Units the image does not have are left alone, not masked pre-emptively.
    expect(existsSync(join(root, 'etc/systemd/system/firewalld.service'))).toBe(false);
  });

  it('fails loudly and installs nothing when the bundle is missing', () => {
    rmSync(bundle);
    const r = provision();
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`agent bundle '${bundle}' does not exist`);
    expect(r.stderr).toContain('node scripts/build.mjs agent');
    expect(existsSync(join(root, 'opt/hanat'))).toBe(false);
    expect(existsSync(dnfLog)).toBe(false);
  });

  it('fails when the package step does not provide /usr/bin/node-22', () => {
    const r = provision([], { HANAT_PKG_INSTALL: 'true' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('/usr/bin/node-22 is missing');
    expect(existsSync(join(root, 'etc/systemd/system/hanat-agent.service'))).toBe(false);
  });

  it('fails when the package step fails', () => {
    const r = provision([], { HANAT_PKG_INSTALL: 'false' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('package installation failed');
  });

  it('refuses to guess a package manager for a --root other than /', () => {
    const r = provision([], { HANAT_PKG_INSTALL: undefined });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('needs HANAT_PKG_INSTALL');
  });

  it('skips the package step with --no-packages', () => {
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    writeFileSync(join(root, 'usr/bin/node-22'), '#!/bin/sh\n');
    chmodSync(join(root, 'usr/bin/node-22'), 0o755);
    const r = provision(['--no-packages'], { HANAT_PKG_INSTALL: undefined });
    expect(r.status).toBe(0);
    expect(existsSync(join(root, 'opt/hanat/hanat-agent.cjs'))).toBe(true);
  });

  it('rejects an unknown option with usage exit code 2', () => {
    const r = provision(['--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown argument '--bogus'");
  });
});
