/**
 * A fake host for unit tests: `exec` understands exactly the commands the agent
 * runs (sysctl, ip -j link, nft) and keeps their state, and records every argv.
 * The real-kernel test (kernel.netns.test.ts) keeps this fake honest.
 */
import type { Exec, ExecResult, HostFs } from '../../src/host.js';

interface Rule {
  handle: number;
  text: string;
  comment?: string;
}

export interface FakeNftTable {
  set?: { type: string; flags: string[]; elements: string[] };
  chain?: { type: string; hook: string; prio: number; policy: string };
  rules: Rule[];
}

const RULE_RE = /^ip saddr @vpc_cidrs ip daddr != @vpc_cidrs masquerade comment "hanat"$/;

export class FakeHost {
  readonly calls: { file: string; args: string[]; input?: string }[] = [];
  sysctls = new Map<string, string>([
    ['net.ipv4.ip_forward', '0'],
    ['net.ipv4.conf.all.send_redirects', '1'],
    ['net.ipv4.conf.default.send_redirects', '1'],
    ['net.ipv4.conf.eth0.send_redirects', '1'],
    ['net.ipv4.conf.lo.send_redirects', '1'],
    ['net.netfilter.nf_conntrack_buckets', '4096'],
    ['net.netfilter.nf_conntrack_max', '16384'],
    ['net.netfilter.nf_conntrack_count', '10'],
    ['net.netfilter.nf_conntrack_tcp_timeout_established', '432000'],
  ]);
  /** sysctls a namespace will not let us write. */
  readonly readOnly = new Set<string>();
  links = [
    { ifname: 'lo', address: '00:00:00:00:00:00', link_type: 'loopback' },
    { ifname: 'eth0', address: '02:00:00:00:00:01', link_type: 'ether' },
  ];
  /** nftables tables by "family name"; only `ip hanat` is modelled in detail. */
  readonly tables = new Map<string, FakeNftTable>();
  memTotalKb = 482_000;
  private nextHandle = 1;
  /** Like a fresh boot: the net.netfilter sysctls appear only once a nat chain loaded conntrack. */
  conntrackLoadsWithNat = false;
  /** When set, `nft` fails with this stderr. */
  nftBroken: string | undefined;

  readonly exec: Exec = (file, args, opts) => {
    this.calls.push({ file, args: [...args], ...(opts?.input !== undefined ? { input: opts.input } : {}) });
    if (file === 'sysctl') return Promise.resolve(this.sysctl([...args]));
    if (file === 'ip') return Promise.resolve(ok(JSON.stringify(this.links)));
    if (file === 'nft') return Promise.resolve(this.nft([...args], opts?.input ?? ''));
    return Promise.reject(Object.assign(new Error(`spawn ${file} ENOENT`), { code: 'ENOENT' }));
  };

  readonly fs: HostFs = {
    readFile: (path) => {
      if (path === '/proc/meminfo') return Promise.resolve(`MemTotal:       ${this.memTotalKb} kB\nMemFree:          100000 kB\n`);
      return Promise.reject(Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' }));
    },
  };

  /** Argv of the calls that change something. */
  writes(): string[] {
    return this.calls.filter((c) => (c.file === 'sysctl' && c.args[0] === '-w') || (c.file === 'nft' && c.args[0] === '-f')).map((c) => `${c.file} ${c.args.join(' ')}${c.input ? `\n${c.input}` : ''}`);
  }

  hanat(): FakeNftTable | undefined {
    return this.tables.get('ip hanat');
  }

  private has(key: string): boolean {
    if (this.conntrackLoadsWithNat && key.startsWith('net.netfilter.') && !this.hanat()?.chain) return false;
    return this.sysctls.has(key);
  }

  private sysctl(args: string[]): ExecResult {
    let out = '';
    let err = '';
    if (args[0] === '-w') {
      for (const kv of args.slice(1)) {
        const [k, v] = kv.split('=') as [string, string];
        if (!this.has(k)) err += `sysctl: cannot stat /proc/sys/${k.replaceAll('.', '/')}: No such file or directory\n`;
        else if (this.readOnly.has(k)) err += `sysctl: setting key "${k}": Invalid argument\n`;
        else {
          this.sysctls.set(k, v);
          out += `${k} = ${v}\n`;
        }
      }
      return { code: 0, stdout: out, stderr: err };
    }
    let code = 0;
    for (const k of args) {
      const v = this.has(k) ? this.sysctls.get(k) : undefined;
      if (v === undefined) {
        err += `sysctl: cannot stat /proc/sys/${k.replaceAll('.', '/')}: No such file or directory\n`;
        code = 255;
      } else out += `${k} = ${v}\n`;
    }
    return { code, stdout: out, stderr: err };
  }

  private nft(args: string[], input: string): ExecResult {
    if (this.nftBroken) return { code: 1, stdout: '', stderr: this.nftBroken };
    if (args.join(' ') === '-j list table ip hanat') {
      const t = this.hanat();
      if (!t) return { code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist table ip hanat\n' };
      return ok(JSON.stringify(this.listJson(t)));
    }
    if (args.join(' ') === '-f -') return this.script(input);
    return { code: 1, stdout: '', stderr: `fake nft: unsupported ${args.join(' ')}` };
  }

  /** Applies a script atomically, like nft: all or nothing. */
  private script(input: string): ExecResult {
    const before = structuredClone([...this.tables]);
    const handleBefore = this.nextHandle;
    for (const line of input.split('\n').map((l) => l.trim()).filter(Boolean)) {
      const err = this.command(line);
      if (err) {
        this.tables.clear();
        for (const [k, v] of before) this.tables.set(k, v);
        this.nextHandle = handleBefore;
        return { code: 1, stdout: '', stderr: `Error: ${err}\n${line}\n` };
      }
    }
    return ok('');
  }

  private command(line: string): string | undefined {
    let m: RegExpExecArray | null;
    if (line === 'add table ip hanat') {
      if (!this.tables.has('ip hanat')) this.tables.set('ip hanat', { rules: [] });
      return;
    }
    if (line === 'delete table ip hanat') return this.tables.delete('ip hanat') ? undefined : 'No such file or directory';
    const t = this.hanat();
    if (!t) return 'No such file or directory';
    if (line === 'add set ip hanat vpc_cidrs { type ipv4_addr; flags interval; }') {
      t.set ??= { type: 'ipv4_addr', flags: ['interval'], elements: [] };
      return;
    }
    if ((m = /^(add|delete) element ip hanat vpc_cidrs \{ (.+) \}$/.exec(line))) {
      if (!t.set) return 'No such file or directory';
      const items = m[2]!.split(', ');
      if (m[1] === 'add') t.set.elements.push(...items.filter((i) => !t.set!.elements.includes(i)));
      else {
        if (items.some((i) => !t.set!.elements.includes(i))) return 'Could not process rule: No such file or directory';
        t.set.elements = t.set.elements.filter((e) => !items.includes(e));
      }
      return;
    }
    if (line === 'add chain ip hanat postrouting { type nat hook postrouting priority srcnat; policy accept; }') {
      t.chain ??= { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' };
      return;
    }
    if ((m = /^add rule ip hanat postrouting (.+)$/.exec(line))) {
      if (!t.chain) return 'No such file or directory';
      if (!RULE_RE.test(m[1]!)) return `fake nft: unexpected rule ${m[1]}`;
      t.rules.push({ handle: this.nextHandle++, text: m[1]!, comment: 'hanat' });
      return;
    }
    if ((m = /^delete rule ip hanat postrouting handle (\d+)$/.exec(line))) {
      const i = t.rules.findIndex((r) => r.handle === Number(m![1]));
      if (i < 0) return 'Could not process rule: No such file or directory';
      t.rules.splice(i, 1);
      return;
    }
    return `syntax error (fake nft does not know '${line}')`;
  }

  private listJson(t: FakeNftTable) {
    const items: unknown[] = [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family: 'ip', name: 'hanat', handle: 1 } }];
    if (t.set) {
      items.push({
        set: {
          family: 'ip',
          name: 'vpc_cidrs',
          table: 'hanat',
          type: t.set.type,
          handle: 2,
          flags: t.set.flags,
          ...(t.set.elements.length
            ? {
                elem: t.set.elements.map((e) => {
                  const [addr, len] = e.split('/') as [string, string];
                  return len === '32' ? addr : { prefix: { addr, len: Number(len) } };
                }),
              }
            : {}),
        },
      });
    }
    if (t.chain) items.push({ chain: { family: 'ip', table: 'hanat', name: 'postrouting', handle: 3, ...t.chain } });
    for (const r of t.rules) {
      items.push({
        rule: {
          family: 'ip',
          table: 'hanat',
          chain: 'postrouting',
          handle: r.handle,
          ...(r.comment ? { comment: r.comment } : {}),
          expr: RULE_RE.test(r.text)
            ? [
                { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@vpc_cidrs' } },
                { match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '@vpc_cidrs' } },
                { masquerade: null },
              ]
            : [{ counter: { packets: 0, bytes: 0 } }],
        },
      });
    }
    return { nftables: items };
  }

  /** Simulates someone else putting a rule into hanat's chain. */
  addForeignRule(): number {
    const handle = this.nextHandle++;
    this.hanat()!.rules.unshift({ handle, text: 'counter' });
    return handle;
  }
}

function ok(stdout: string): ExecResult {
  return { code: 0, stdout, stderr: '' };
}
