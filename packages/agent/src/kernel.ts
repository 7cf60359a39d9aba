/**
 * Makes the kernel a NAT, idempotently (STYLE.md 11): render the desired sysctl
 * and nftables state, observe what is there, apply only the difference, read back.
 *
 * - NAT lives in an nftables table that hanat owns wholly, `table ip hanat`: one set
 *   of the VPC CIDRs and one masquerade rule commented `hanat`. Rules others add to it
 *   are left in place on a normal pass, but removed when hanat rebuilds the table
 *   (its set or chain was redefined). No other table is read or touched, so rules
 *   written elsewhere (iptables-nft's `ip nat` included) survive.
 * - sysctls go through `sysctl`. Those a network namespace does not let us write
 *   (conntrack sizing is global, read-only outside the initial namespace) are
 *   skipped with a warning, once; forwarding and redirects are per namespace and required.
 * - Every command goes through the injected `exec`.
 */
import type { Logger } from 'pino';
import { KernelError, errorMessage } from './errors.js';
import type { Exec, HostFs } from './host.js';

export const NFT_TABLE = 'hanat';
export const NFT_SET = 'vpc_cidrs';
export const NFT_CHAIN = 'postrouting';
export const NFT_COMMENT = 'hanat';
/** What to check when nft fails: the usual causes on a NAT image or in a hardened unit. */
const NFT_HINT =
  'check that nftables is installed (the nft command, and the nf_tables and nft_masq kernel modules) and that the agent runs as root or with CAP_NET_ADMIN';
/** What to check when a required sysctl does not take. */
const SYSCTL_HINT = 'check that the agent runs as root or with CAP_NET_ADMIN, and that /proc/sys is writable (ProtectKernelTunables off, not a read-only container mount)';
/** nftables' `srcnat` priority for the postrouting hook. */
const SRCNAT_PRIORITY = 100;

/**
 * RFC 5382 REQ-5: a NAT's idle timeout for established TCP must not be under
 * 2 h 4 min. That keeps connections that use the default TCP keepalive (2 h)
 * alive, unlike NAT Gateway's 350 s, without Linux's 5-day default, which lets
 * dead connections fill the table.
 */
export const TCP_ESTABLISHED_TIMEOUT_S = 7440;
/** Bytes of kernel memory per conntrack entry, rounded up (struct nf_conn plus extensions, slab-aligned). */
const CONNTRACK_ENTRY_BYTES = 320;
const CONNTRACK_MIN = 65_536;
const CONNTRACK_MAX = 2_097_152;

/** Conntrack entries for a host with `memBytes` of RAM: at most 1/16 of memory, clamped to [64 Ki, 2 Mi], a multiple of 1024. */
export function conntrackMaxFor(memBytes: number): number {
  const n = Math.floor(memBytes / 16 / CONNTRACK_ENTRY_BYTES);
  return Math.floor(Math.min(CONNTRACK_MAX, Math.max(CONNTRACK_MIN, n)) / 1024) * 1024;
}

export interface KernelTarget {
  vpcCidrs: readonly string[];
  /** MAC of the primary interface, to find its name for per-interface sysctls. */
  mac: string;
  /** Overrides the memory-based conntrack size. */
  conntrackMax?: number | undefined;
}

export interface Sysctl {
  key: string;
  value: string;
  /** Required settings fail the reconcile when they cannot be applied; others are skipped with a warning. */
  required: boolean;
}

export interface NftRule {
  handle: number;
  /** Carries hanat's comment. */
  ours: boolean;
  /** Ours and exactly the masquerade rule hanat writes. */
  exact: boolean;
}

export interface NftState {
  table: boolean;
  /** Set elements as CIDRs, or undefined when the set is missing; `setOk` false when its definition is not ours. */
  elements?: string[] | undefined;
  setOk: boolean;
  chain: boolean;
  chainOk: boolean;
  rules: NftRule[];
}

export interface KernelReport {
  /** What was changed, human-readable; empty when nothing needed changing. */
  changes: string[];
  /** sysctls skipped in this run (not permitted here), first time only. */
  skipped: { key: string; reason: string }[];
}

export class Kernel {
  private readonly exec: Exec;
  private readonly fs: HostFs;
  private readonly log: Logger;
  private iface: string | null | undefined;
  private memBytes: number | undefined;
  private readonly skipped = new Map<string, string>();
  private foreignWarned = false;

  constructor(deps: { exec: Exec; fs: HostFs; log: Logger }) {
    this.exec = deps.exec;
    this.fs = deps.fs;
    this.log = deps.log;
  }

  /** The sysctls hanat wants, minus those this host has refused before. */
  async desiredSysctls(target: KernelTarget): Promise<Sysctl[]> {
    const iface = await this.primaryInterface(target.mac);
    const ctMax = await this.conntrackMax(target.conntrackMax);
    const all: Sysctl[] = [
      { key: 'net.ipv4.ip_forward', value: '1', required: true },
      { key: 'net.ipv4.conf.all.send_redirects', value: '0', required: true },
      { key: 'net.ipv4.conf.default.send_redirects', value: '0', required: true },
      ...(iface ? [{ key: `net.ipv4.conf.${iface}.send_redirects`, value: '0', required: true }] : []),
      { key: 'net.netfilter.nf_conntrack_buckets', value: String(ctMax), required: false },
      { key: 'net.netfilter.nf_conntrack_max', value: String(ctMax), required: false },
      { key: 'net.netfilter.nf_conntrack_tcp_timeout_established', value: String(TCP_ESTABLISHED_TIMEOUT_S), required: false },
    ];
    return all.filter((s) => !this.skipped.has(s.key));
  }

  /** The conntrack table size hanat sets: `override` when given, else the size for this host's MemTotal. */
  async conntrackMax(override?: number): Promise<number> {
    return override ?? conntrackMaxFor(await this.memTotal());
  }

  /**
   * Observe, compare, apply the difference, read back. Throws KernelError when a
   * required setting does not hold afterwards.
   */
  async reconcile(target: KernelTarget): Promise<KernelReport> {
    const report: KernelReport = { changes: [], skipped: [] };

    // NAT table first: creating its nat chain is what loads conntrack on a fresh boot,
    // and with it the net.netfilter sysctls read below.
    const nft = await this.readNft();
    const script = nftScript(nft, target.vpcCidrs);
    this.warnForeignRules(nft);
    if (script.commands.length > 0) {
      const res = await this.run('nft', ['-f', '-'], script.commands.join('\n') + '\n');
      if (res.code !== 0) throw new KernelError(`'nft -f -' could not apply hanat's NAT table: ${res.stderr.trim()}; ${NFT_HINT}`);
      report.changes.push(...script.changes);
    }

    let wanted = await this.desiredSysctls(target);
    const before = await this.readSysctls(wanted.map((s) => s.key));
    // A missing optional sysctl (no conntrack in this kernel or namespace) is skipped, not retried.
    for (const s of wanted) {
      if (before[s.key] === undefined && !s.required) this.skip(s.key, 'not present on this host', report);
    }
    wanted = wanted.filter((s) => !this.skipped.has(s.key));
    const missingRequired = wanted.filter((s) => s.required && before[s.key] === undefined);
    if (missingRequired.length > 0) {
      throw new KernelError(`'sysctl ${missingRequired.map((s) => s.key).join(' ')}' found no such key; is this a Linux host with IPv4, and is /proc/sys mounted?`);
    }

    const toWrite = wanted.filter((s) => before[s.key] !== s.value);
    if (toWrite.length > 0) {
      const res = await this.run('sysctl', ['-w', ...toWrite.map((s) => `${s.key}=${s.value}`)]);
      const after = await this.readSysctls(toWrite.map((s) => s.key));
      for (const s of toWrite) {
        if (after[s.key] === s.value) {
          report.changes.push(`sysctl ${s.key} ${before[s.key]} -> ${s.value}`);
        } else if (!s.required) {
          this.skip(s.key, sysctlError(res.stderr, s.key) ?? `kernel kept ${after[s.key]}`, report);
        } else {
          throw new KernelError(
            `'sysctl -w ${s.key}=${s.value}' did not take (now ${after[s.key]}): ${sysctlError(res.stderr, s.key) ?? 'no error reported'}; ${SYSCTL_HINT}`,
          );
        }
      }
    }

    if (script.commands.length > 0) {
      const left = nftScript(await this.readNft(), target.vpcCidrs);
      if (left.commands.length > 0) throw new KernelError(`hanat's NAT table still differs after applying it: ${left.changes.join('; ')}`);
    }
    return report;
  }

  /** Reads hanat's NAT table. Exported for `check` and the tests. */
  async readNft(): Promise<NftState> {
    const res = await this.run('nft', ['-j', 'list', 'table', 'ip', NFT_TABLE]);
    if (res.code !== 0) {
      if (/No such file or directory/i.test(res.stderr)) return { table: false, setOk: false, chain: false, chainOk: false, rules: [] };
      throw new KernelError(`'nft -j list table ip ${NFT_TABLE}' failed: ${res.stderr.trim()}; ${NFT_HINT}`);
    }
    return parseNftTable(res.stdout);
  }

  /** `sysctl k1 k2 ...` → values; keys the kernel does not have are absent. */
  async readSysctls(keys: readonly string[]): Promise<Record<string, string | undefined>> {
    if (keys.length === 0) return {};
    const res = await this.run('sysctl', [...keys]);
    const out: Record<string, string | undefined> = {};
    for (const line of res.stdout.split('\n')) {
      const m = /^([\w.-]+) = (.*)$/.exec(line.trim());
      if (m && keys.includes(m[1]!)) out[m[1]!] = m[2]!.trim();
    }
    return out;
  }

  private skip(key: string, reason: string, report: KernelReport): void {
    if (this.skipped.has(key)) return;
    this.skipped.set(key, reason);
    report.skipped.push({ key, reason });
    this.log.warn({ event: 'kernel.sysctl_skipped', key, reason }, `sysctl ${key} not permitted here, skipped: ${reason}`);
  }

  private warnForeignRules(nft: NftState): void {
    const foreign = nft.rules.filter((r) => !r.ours);
    if (foreign.length === 0 || this.foreignWarned) return;
    this.foreignWarned = true;
    this.log.warn(
      { event: 'kernel.foreign_rule', handles: foreign.map((r) => r.handle) },
      `table ip ${NFT_TABLE} holds rules hanat did not write; they are left in place for now, but the table is hanat's and a rebuild removes them: put your own rules in a table of your own`,
    );
  }

  private async primaryInterface(mac: string): Promise<string | undefined> {
    if (this.iface !== undefined) return this.iface ?? undefined;
    const res = await this.run('ip', ['-j', 'link', 'show']);
    let links: { ifname?: string; address?: string; link_type?: string }[] = [];
    try {
      links = res.code === 0 ? (JSON.parse(res.stdout) as typeof links) : [];
    } catch {
      links = [];
    }
    const valid = links.filter((l) => typeof l.ifname === 'string' && /^[A-Za-z0-9_-]{1,15}$/.test(l.ifname));
    const byMac = valid.find((l) => l.address?.toLowerCase() === mac.toLowerCase());
    const ether = valid.filter((l) => l.link_type === 'ether');
    const found = byMac ?? (ether.length === 1 ? ether[0] : undefined);
    this.iface = found?.ifname ?? null;
    if (!found) {
      this.log.warn({ event: 'kernel.interface_unknown', mac }, `no interface with MAC ${mac}; per-interface send_redirects left to the 'all' setting`);
    }
    return this.iface ?? undefined;
  }

  /**
   * Conntrack's use and size, read from /proc (no process to start: the self-watchdog reads it
   * every second). Undefined where there is no conntrack to measure (not loaded, or a network
   * namespace that does not show it).
   */
  async conntrackUse(): Promise<{ count: number; max: number } | undefined> {
    try {
      const [count, max] = await Promise.all(['count', 'max'].map((k) => this.fs.readFile(`/proc/sys/net/netfilter/nf_conntrack_${k}`)));
      const c = Number(count!.trim());
      const m = Number(max!.trim());
      return Number.isFinite(c) && m > 0 ? { count: c, max: m } : undefined;
    } catch {
      return undefined;
    }
  }

  private async memTotal(): Promise<number> {
    if (this.memBytes !== undefined) return this.memBytes;
    const text = await this.fs.readFile('/proc/meminfo');
    const m = /^MemTotal:\s+(\d+) kB$/m.exec(text);
    if (!m) throw new KernelError('/proc/meminfo has no MemTotal line');
    this.memBytes = Number(m[1]) * 1024;
    return this.memBytes;
  }

  private async run(file: string, args: string[], input?: string) {
    try {
      return await this.exec(file, args, input === undefined ? undefined : { input });
    } catch (err) {
      throw new KernelError(`cannot run ${file}: ${errorMessage(err)}; is it installed?`, { cause: err });
    }
  }
}

/** The masquerade rule as `nft -j` prints it; compared structurally. */
const RULE_EXPR = [
  { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: `@${NFT_SET}` } },
  { match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: `@${NFT_SET}` } },
  { masquerade: null },
];
const RULE_TEXT = `ip saddr @${NFT_SET} ip daddr != @${NFT_SET} masquerade comment "${NFT_COMMENT}"`;

/** Parses `nft -j list table ip hanat`. Throws KernelError on output it cannot read. */
export function parseNftTable(json: string): NftState {
  let doc: { nftables?: unknown[] };
  try {
    doc = JSON.parse(json) as { nftables?: unknown[] };
  } catch (err) {
    throw new KernelError(`nft printed JSON it could not parse: ${errorMessage(err)}`, { cause: err });
  }
  const state: NftState = { table: false, setOk: false, chain: false, chainOk: false, rules: [] };
  for (const item of doc.nftables ?? []) {
    const o = item as Record<string, Record<string, unknown> | undefined>;
    if (o.table?.name === NFT_TABLE) state.table = true;
    const set = o.set;
    if (set && set.name === NFT_SET && set.table === NFT_TABLE) {
      // nft prints a lone flag as a plain string in newer releases, as an array in older ones.
      const flags = Array.isArray(set.flags) ? set.flags : typeof set.flags === 'string' ? [set.flags] : [];
      state.setOk = set.type === 'ipv4_addr' && flags.includes('interval');
      state.elements = [];
      for (const e of Array.isArray(set.elem) ? (set.elem as unknown[]) : []) {
        const cidr = elementCidr(e);
        if (cidr) state.elements.push(cidr);
        else state.setOk = false;
      }
    }
    const chain = o.chain;
    if (chain && chain.name === NFT_CHAIN && chain.table === NFT_TABLE) {
      state.chain = true;
      state.chainOk = chain.type === 'nat' && chain.hook === 'postrouting' && chain.prio === SRCNAT_PRIORITY && chain.policy === 'accept';
    }
    const rule = o.rule;
    if (rule && rule.chain === NFT_CHAIN && rule.table === NFT_TABLE && typeof rule.handle === 'number') {
      const comment = typeof rule.comment === 'string' ? rule.comment : undefined;
      const ours = comment === NFT_COMMENT;
      state.rules.push({ handle: rule.handle, ours, exact: ours && JSON.stringify(rule.expr) === JSON.stringify(RULE_EXPR) });
    }
  }
  return state;
}

function elementCidr(e: unknown): string | undefined {
  if (typeof e === 'string') return `${e}/32`;
  const p = (e as { prefix?: { addr?: unknown; len?: unknown } } | null)?.prefix;
  if (p && typeof p.addr === 'string' && typeof p.len === 'number') return `${p.addr}/${p.len}`;
  return undefined;
}

/** The nft commands that turn `have` into hanat's table for `cidrs` (empty when it already matches). */
export function nftScript(have: NftState, cidrs: readonly string[]): { commands: string[]; changes: string[] } {
  const want = [...new Set(cidrs.map(canonicalCidr))].sort();
  const t = `ip ${NFT_TABLE}`;
  const create = (prefix: string[]) => ({
    commands: [
      ...prefix,
      `add table ${t}`,
      `add set ${t} ${NFT_SET} { type ipv4_addr; flags interval; }`,
      ...(want.length ? [`add element ${t} ${NFT_SET} { ${want.join(', ')} }`] : []),
      `add chain ${t} ${NFT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`,
      `add rule ${t} ${NFT_CHAIN} ${RULE_TEXT}`,
    ],
  });
  if (!have.table) return { ...create([]), changes: [`nft: created table ${t} masquerading ${want.join(', ')}`] };
  if ((have.elements !== undefined && !have.setOk) || (have.chain && !have.chainOk)) {
    // Our own objects with a definition we did not write: rebuild the table in one transaction.
    return { ...create([`delete table ${t}`]), changes: [`nft: rebuilt table ${t} (set or chain definition had changed)`] };
  }
  const commands: string[] = [];
  const changes: string[] = [];
  if (have.elements === undefined) {
    commands.push(`add set ${t} ${NFT_SET} { type ipv4_addr; flags interval; }`);
    changes.push(`nft: added set ${NFT_SET}`);
  }
  const present = new Set((have.elements ?? []).map(canonicalCidr));
  const add = want.filter((c) => !present.has(c));
  const del = [...present].filter((c) => !want.includes(c));
  if (del.length) {
    commands.push(`delete element ${t} ${NFT_SET} { ${del.join(', ')} }`);
    changes.push(`nft: removed ${del.join(', ')} from ${NFT_SET}`);
  }
  if (add.length) {
    commands.push(`add element ${t} ${NFT_SET} { ${add.join(', ')} }`);
    changes.push(`nft: added ${add.join(', ')} to ${NFT_SET}`);
  }
  if (!have.chain) {
    commands.push(`add chain ${t} ${NFT_CHAIN} { type nat hook postrouting priority srcnat; policy accept; }`);
    changes.push(`nft: added chain ${NFT_CHAIN}`);
  }
  const ours = have.rules.filter((r) => r.ours);
  const exact = ours.filter((r) => r.exact);
  const stale = [...ours.filter((r) => !r.exact), ...exact.slice(1)];
  for (const r of stale) {
    commands.push(`delete rule ${t} ${NFT_CHAIN} handle ${r.handle}`);
    changes.push(`nft: deleted stale hanat rule (handle ${r.handle})`);
  }
  if (exact.length === 0) {
    commands.push(`add rule ${t} ${NFT_CHAIN} ${RULE_TEXT}`);
    changes.push('nft: added the masquerade rule');
  }
  return { commands, changes };
}

/** `10.0.0.0/16` as nft prints it: /32 kept explicit so the comparison is uniform. */
function canonicalCidr(c: string): string {
  return c.includes('/') ? c : `${c}/32`;
}

/** The line of `sysctl -w` stderr about `key`, if any. */
function sysctlError(stderr: string, key: string): string | undefined {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .find((l) => l.includes(key) || l.includes(key.replaceAll('.', '/')));
}
