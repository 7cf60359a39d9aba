import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { KernelError } from '../src/errors.js';
import { Kernel, TCP_ESTABLISHED_TIMEOUT_S, conntrackMaxFor, nftScript, parseNftTable } from '../src/kernel.js';
import { FakeHost } from './support/fake-host.js';
import { logCapture } from './support/harness.js';

const target = { vpcCidrs: ['10.0.0.0/16', '10.1.0.0/16'], mac: '02:00:00:00:00:01' };

let host: FakeHost;
let logs: ReturnType<typeof logCapture>;
let kernel: Kernel;
beforeEach(() => {
  host = new FakeHost();
  logs = logCapture();
  kernel = new Kernel({ exec: host.exec, fs: host.fs, log: pino({ level: 'debug' }, logs.stream) });
});

describe('kernel NAT configuration', () => {
  it('turns forwarding on, redirects off, and masquerades every VPC CIDR in its own table', async () => {
    const report = await kernel.reconcile(target);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('1');
    expect(host.sysctls.get('net.ipv4.conf.all.send_redirects')).toBe('0');
    expect(host.sysctls.get('net.ipv4.conf.default.send_redirects')).toBe('0');
    expect(host.sysctls.get('net.ipv4.conf.eth0.send_redirects')).toBe('0');
    expect(host.sysctls.get('net.netfilter.nf_conntrack_tcp_timeout_established')).toBe(String(TCP_ESTABLISHED_TIMEOUT_S));
    expect(host.hanat()?.set?.elements).toEqual(['10.0.0.0/16', '10.1.0.0/16']);
    expect(host.hanat()?.rules).toHaveLength(1);
    expect(report.changes).toContain('sysctl net.ipv4.ip_forward 0 -> 1');
  });

  it('applies nothing the second time: same state, no write commands', async () => {
    await kernel.reconcile(target);
    const writes = host.writes().length;
    const rules = host.hanat()!.rules.map((r) => r.handle);
    const report = await kernel.reconcile(target);
    expect(report.changes).toEqual([]);
    expect(host.writes()).toHaveLength(writes);
    expect(host.hanat()!.rules.map((r) => r.handle)).toEqual(rules);
  });

  it('touches nothing outside table ip hanat and never flushes', async () => {
    await kernel.reconcile(target);
    const scripts = host.calls.filter((c) => c.file === 'nft' && c.input).map((c) => c.input!);
    for (const line of scripts.join('\n').split('\n').filter(Boolean)) {
      expect(line).toMatch(/^(add|delete) (table|set|element|chain|rule) ip hanat( |$)/);
      expect(line).not.toMatch(/flush/);
    }
  });

  it('re-adds only the missing rule when someone deletes it', async () => {
    await kernel.reconcile(target);
    host.hanat()!.rules = [];
    const before = host.writes().length;
    const report = await kernel.reconcile(target);
    expect(report.changes).toEqual(['nft: added the masquerade rule']);
    const [script] = host.writes().slice(before);
    expect(script).toBe('nft -f -\nadd rule ip hanat postrouting ip saddr @vpc_cidrs ip daddr != @vpc_cidrs masquerade comment "hanat"\n');
    expect(host.hanat()!.rules).toHaveLength(1);
  });

  it('repairs forwarding switched off behind its back', async () => {
    await kernel.reconcile(target);
    host.sysctls.set('net.ipv4.ip_forward', '0');
    const report = await kernel.reconcile(target);
    expect(report.changes).toEqual(['sysctl net.ipv4.ip_forward 0 -> 1']);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('1');
  });

  it('follows a new VPC CIDR by adding just that element', async () => {
    await kernel.reconcile(target);
    const report = await kernel.reconcile({ ...target, vpcCidrs: [...target.vpcCidrs, '100.64.0.0/16'] });
    expect(report.changes).toEqual(['nft: added 100.64.0.0/16 to vpc_cidrs']);
    expect(host.hanat()!.set!.elements).toContain('100.64.0.0/16');
  });

  it('leaves a rule it did not write in place on a normal pass, and warns once', async () => {
    await kernel.reconcile(target);
    const foreign = host.addForeignRule();
    await kernel.reconcile(target);
    await kernel.reconcile(target);
    expect(host.hanat()!.rules.map((r) => r.handle)).toContain(foreign);
    expect(logs.events().filter((e) => e === 'kernel.foreign_rule')).toHaveLength(1);
    expect(logs.lines.find((l) => l.event === 'kernel.foreign_rule')!.msg).toMatch(/a rebuild removes them/);
  });

  it('owns its table wholly: rebuilding it removes rules others put there', async () => {
    await kernel.reconcile(target);
    const foreign = host.addForeignRule();
    host.hanat()!.chain!.prio = 0;
    const report = await kernel.reconcile(target);
    expect(report.changes).toEqual(['nft: rebuilt table ip hanat (set or chain definition had changed)']);
    expect(host.hanat()!.rules.map((r) => r.handle)).not.toContain(foreign);
    expect(host.hanat()!.chain!.prio).toBe(100);
  });

  it('skips conntrack sysctls a network namespace will not let it write, with one warning', async () => {
    host.readOnly.add('net.netfilter.nf_conntrack_max');
    host.readOnly.add('net.netfilter.nf_conntrack_buckets');
    const report = await kernel.reconcile(target);
    expect(report.skipped.map((s) => s.key).sort()).toEqual(['net.netfilter.nf_conntrack_buckets', 'net.netfilter.nf_conntrack_max']);
    expect(report.skipped[0]!.reason).toMatch(/Invalid argument/);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('1');
    await kernel.reconcile(target);
    expect(logs.lines.filter((l) => l.event === 'kernel.sysctl_skipped')).toHaveLength(2);
    expect(logs.lines.find((l) => l.event === 'kernel.sysctl_skipped')!.level).toBe(40);
  });

  it('sizes conntrack on a fresh boot, where conntrack loads with the NAT chain', async () => {
    host.conntrackLoadsWithNat = true;
    const report = await kernel.reconcile(target);
    expect(report.skipped).toEqual([]);
    expect(host.sysctls.get('net.netfilter.nf_conntrack_tcp_timeout_established')).toBe(String(TCP_ESTABLISHED_TIMEOUT_S));
  });

  it('skips conntrack sysctls a kernel without conntrack does not have', async () => {
    for (const k of [...host.sysctls.keys()]) if (k.startsWith('net.netfilter.')) host.sysctls.delete(k);
    const report = await kernel.reconcile(target);
    expect(report.skipped).toHaveLength(3);
    expect(host.sysctls.get('net.ipv4.ip_forward')).toBe('1');
  });

  it('fails when forwarding cannot be turned on, naming the command and what to check', async () => {
    host.readOnly.add('net.ipv4.ip_forward');
    await expect(kernel.reconcile(target)).rejects.toThrow(KernelError);
    await expect(kernel.reconcile(target)).rejects.toThrow(/'sysctl -w net\.ipv4\.ip_forward=1' did not take \(now 0\): .*Invalid argument; check .*CAP_NET_ADMIN.*\/proc\/sys is writable/);
  });

  it('names the nft command that failed and what to check', async () => {
    host.nftBroken = 'Error: Could not process rule: Operation not permitted';
    await expect(kernel.reconcile(target)).rejects.toThrow(/'nft -j list table ip hanat' failed: Error: Could not process rule: Operation not permitted; check that nftables is installed .*CAP_NET_ADMIN/);
    host.nftBroken = undefined;
    const k = new Kernel({
      exec: (file, args, opts) =>
        file === 'nft' && args[0] === '-f' ? Promise.resolve({ code: 1, stdout: '', stderr: 'Error: Could not process rule: No such file or directory\n' }) : host.exec(file, args, opts),
      fs: host.fs,
      log: pino({ level: 'silent' }),
    });
    await expect(k.reconcile(target)).rejects.toThrow(/'nft -f -' could not apply hanat's NAT table: Error: Could not process rule: No such file or directory; check that nftables is installed \(.*nft_masq.*\) and that the agent runs as root or with CAP_NET_ADMIN/);
  });

  it('fails with a clear message when nft is missing', async () => {
    const k = new Kernel({
      exec: (file, args, opts) => (file === 'nft' ? Promise.reject(Object.assign(new Error('spawn nft ENOENT'), { code: 'ENOENT' })) : host.exec(file, args, opts)),
      fs: host.fs,
      log: pino({ level: 'silent' }),
    });
    await expect(k.reconcile(target)).rejects.toThrow(/cannot run nft: spawn nft ENOENT; is it installed\?/);
  });

  it('sizes conntrack from memory, within bounds', async () => {
    expect(conntrackMaxFor(512 * 2 ** 20)).toBe(104_448);
    // A t4g.nano: 512 MiB, of which the kernel reports about 430 MiB as MemTotal (docs/agent.md's example).
    expect(conntrackMaxFor(430 * 2 ** 20)).toBe(88_064);
    expect(conntrackMaxFor(64 * 2 ** 20)).toBe(65_536);
    expect(conntrackMaxFor(256 * 2 ** 30)).toBe(2_097_152);
    host.memTotalKb = 2 * 1024 * 1024;
    await kernel.reconcile(target);
    expect(host.sysctls.get('net.netfilter.nf_conntrack_max')).toBe(String(conntrackMaxFor(2 * 2 ** 30)));
    expect(host.sysctls.get('net.netfilter.nf_conntrack_buckets')).toBe(String(conntrackMaxFor(2 * 2 ** 30)));
  });

  it('uses the configured conntrack size over the memory-based one', async () => {
    await kernel.reconcile({ ...target, conntrackMax: 300_000 });
    expect(host.sysctls.get('net.netfilter.nf_conntrack_max')).toBe('300000');
  });
});

describe('conntrack use (the self-watchdog reads it every second)', () => {
  it('reads count and max from /proc without starting a process; undefined where there is no conntrack', async () => {
    const files: Record<string, string> = { '/proc/sys/net/netfilter/nf_conntrack_count': '4521\n', '/proc/sys/net/netfilter/nf_conntrack_max': '65536\n' };
    const fs = { readFile: (p: string) => (p in files ? Promise.resolve(files[p]!) : Promise.reject(Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' }))) };
    const k = new Kernel({ exec: host.exec, fs, log: pino({ level: 'silent' }) });
    expect(await k.conntrackUse()).toEqual({ count: 4521, max: 65536 });
    expect(host.calls).toEqual([]);
    delete files['/proc/sys/net/netfilter/nf_conntrack_max'];
    expect(await k.conntrackUse()).toBeUndefined();
    expect(await kernel.conntrackUse()).toBeUndefined(); // FakeHost's /proc has no conntrack
  });
});

describe('nft state', () => {
  it('reads what nft 1.0 prints, /32 elements included', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name: 'hanat', handle: 1 } },
        { set: { family: 'ip', name: 'vpc_cidrs', table: 'hanat', type: 'ipv4_addr', handle: 1, flags: ['interval'], elem: [{ prefix: { addr: '10.0.0.0', len: 16 } }, '192.0.2.1'] } },
        { chain: { family: 'ip', table: 'hanat', name: 'postrouting', handle: 2, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      ],
    });
    const state = parseNftTable(json);
    expect(state).toMatchObject({ table: true, setOk: true, chain: true, chainOk: true, elements: ['10.0.0.0/16', '192.0.2.1/32'], rules: [] });
    expect(nftScript(state, ['10.0.0.0/16', '192.0.2.1/32']).commands).toEqual([
      'add rule ip hanat postrouting ip saddr @vpc_cidrs ip daddr != @vpc_cidrs masquerade comment "hanat"',
    ]);
  });

  it('reads a single set flag printed as a string, as newer nft does, as the same set', () => {
    const json = JSON.stringify({
      nftables: [
        { table: { family: 'ip', name: 'hanat', handle: 1 } },
        { set: { family: 'ip', name: 'vpc_cidrs', table: 'hanat', type: 'ipv4_addr', handle: 1, flags: 'interval', elem: [{ prefix: { addr: '10.0.0.0', len: 16 } }] } },
        { chain: { family: 'ip', table: 'hanat', name: 'postrouting', handle: 2, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
      ],
    });
    const state = parseNftTable(json);
    expect(state).toMatchObject({ setOk: true, elements: ['10.0.0.0/16'] });
    expect(nftScript(state, ['10.0.0.0/16']).commands).not.toContain('delete table ip hanat');
  });

  it('rebuilds its own table in one transaction when its chain was redefined', () => {
    const state = { table: true, setOk: true, elements: ['10.0.0.0/16'], chain: true, chainOk: false, rules: [] };
    const { commands } = nftScript(state, ['10.0.0.0/16']);
    expect(commands[0]).toBe('delete table ip hanat');
    expect(commands).toContain('add chain ip hanat postrouting { type nat hook postrouting priority srcnat; policy accept; }');
  });
});
