/**
 * Brings the router and internet gateway namespaces to a `RouterPlan`: compare the plan
 * with what the kernel has, apply only the difference (one `ip -batch` for rules and
 * routes, one nft transaction per changed ruleset).
 *
 * What the kernel has is observed (`ip -j`) on the first sync, after any failure, and on
 * every `observe: true` sync (the data plane's periodic re-sync), so a rule or route
 * changed behind the lab's back is repaired; in between, the state last applied stands
 * in for it, which keeps a sync to one command on the hot path.
 */
import type { Exec } from './exec.js';
import { inNamespace, ipIn } from './exec.js';
import { igwMappingUpdate, routerForwardUpdate } from './netfilter.js';
import type { RouteSpec, RouterPlan, RuleSpec } from './plan.js';
import { RULE_PREF_BASE, TABLE_BASE, routeKey, ruleKey } from './plan.js';

/** Table numbers and rule priorities the lab owns: [base, base + span). */
const OWNED_SPAN = 20_000;

export interface ApplyResult {
  /** Number of rule, route and ruleset changes applied (0 when nothing differed). */
  changes: number;
}

interface Observed {
  rules: Map<string, RuleSpec>;
  /** `<table>|<dst>` → route */
  routes: Map<string, { table: number; route: RouteSpec }>;
}

export class RouterApplier {
  private lastForward: string | undefined;
  private lastIgw: string | undefined;
  private known: Observed | undefined;

  constructor(
    private readonly exec: Exec,
    private readonly routerNs: string,
    private readonly igwNs: string,
  ) {}

  async apply(plan: RouterPlan, options: { observe?: boolean } = {}): Promise<ApplyResult> {
    const observed = options.observe || !this.known ? await this.observe() : this.known;
    this.known = undefined; // until this apply has succeeded
    const batch: string[] = [];

    const wantRules = new Map(plan.rules.map((r) => [ruleKey(r), r]));
    // Deletions first: a stale rule may hold the priority that a planned rule takes.
    for (const [key, rule] of observed.rules) {
      if (!wantRules.has(key)) batch.push(`rule del pref ${rule.pref}`);
    }
    for (const [key, rule] of wantRules) {
      if (!observed.rules.has(key)) batch.push(`rule add iif ${rule.iif} lookup ${rule.table} pref ${rule.pref}`);
    }

    const wantRoutes = new Map<string, { table: number; route: RouteSpec }>();
    for (const [table, routes] of plan.tables) {
      for (const route of routes) wantRoutes.set(`${table}|${route.dst}`, { table, route });
    }
    for (const [key, { table, route }] of wantRoutes) {
      const have = observed.routes.get(key);
      if (have && routeKey(have.route) === routeKey(route)) continue;
      batch.push(`route replace ${routeArgs(route)} table ${table}`);
    }
    for (const [key, { table, route }] of observed.routes) {
      if (!wantRoutes.has(key)) batch.push(`route del ${route.dst} table ${table}`);
    }

    // Filtering and address mapping first, routes last: when one snapshot both moves an EIP
    // (or turns a source/dest check off) and points a route at that instance, no packet may
    // follow the new route under the old mapping and reach the internet with a stale address.
    let changes = batch.length;
    const forward = routerForwardUpdate(plan.forwardRules, plan.ingressRules);
    if (forward !== this.lastForward) {
      await this.exec(inNamespace(this.routerNs, ['nft', '-f', '-']), { input: forward });
      this.lastForward = forward;
      changes++;
    }
    const igw = igwMappingUpdate(plan.igw);
    if (igw !== this.lastIgw) {
      await this.exec(inNamespace(this.igwNs, ['nft', '-f', '-']), { input: igw });
      this.lastIgw = igw;
      changes++;
    }
    if (batch.length > 0) await this.exec(ipIn(this.routerNs, '-batch', '-'), { input: batch.join('\n') + '\n' });
    this.known = { rules: wantRules, routes: wantRoutes };
    return { changes };
  }

  /** Forget what was applied, so the next `apply` observes the kernel and rewrites netfilter (after a failure). */
  invalidate(): void {
    this.lastForward = undefined;
    this.lastIgw = undefined;
    this.known = undefined;
  }

  private async observe(): Promise<Observed> {
    const [rulesJson, routesJson] = await Promise.all([
      this.exec(ipIn(this.routerNs, '-4', '-j', 'rule', 'show')),
      this.exec(ipIn(this.routerNs, '-4', '-j', 'route', 'show', 'table', 'all')),
    ]);
    const rules = new Map<string, RuleSpec>();
    for (const r of JSON.parse(rulesJson) as IpRule[]) {
      const table = Number(r.table);
      if (!owned(r.priority, RULE_PREF_BASE) || r.iif === undefined || !Number.isInteger(table)) continue;
      const rule = { pref: r.priority, iif: r.iif, table };
      rules.set(ruleKey(rule), rule);
    }
    const routes = new Map<string, { table: number; route: RouteSpec }>();
    for (const r of JSON.parse(routesJson) as IpRoute[]) {
      const table = Number(r.table);
      if (!owned(table, TABLE_BASE)) continue;
      const route = parseRoute(r);
      routes.set(`${table}|${route.dst}`, { table, route });
    }
    return { rules, routes };
  }
}

/** The rule priorities and table numbers owned by the lab, in a router that has nothing else. */
function owned(n: number, base: number): boolean {
  return Number.isInteger(n) && n >= base && n < base + OWNED_SPAN;
}

interface IpRule {
  priority: number;
  iif?: string;
  table?: string;
}

interface IpRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  table?: string;
}

function parseRoute(r: IpRoute): RouteSpec {
  const dst = r.dst === 'default' ? '0.0.0.0/0' : r.dst.includes('/') ? r.dst : `${r.dst}/32`;
  if (r.type === 'blackhole') return { type: 'blackhole', dst };
  if (r.type === 'throw') return { type: 'throw', dst };
  // Anything the lab did not write (unreachable, prohibit, a route without a gateway) differs
  // from every planned route, so it is replaced or deleted.
  return { type: 'unicast', dst, via: r.gateway ?? '', dev: r.dev ?? '' };
}

function routeArgs(r: RouteSpec): string {
  switch (r.type) {
    case 'unicast':
      return `${r.dst} via ${r.via} dev ${r.dev} onlink`;
    case 'blackhole':
      return `blackhole ${r.dst}`;
    case 'throw':
      return `throw ${r.dst}`;
  }
}
