/**
 * `hanat-agent check`: a one-shot self-check. Returns a verdict; main prints it as
 * JSON on stdout and exits 0 when healthy, 1 when not.
 *
 * Healthy means verified: forwarding, the NAT rule and the routes must each pass.
 * Routes that could not be checked (IMDS or AWS unreachable) report `ok: null`
 * with the reason, and the verdict is unhealthy with that reason: a NAT whose
 * routes nobody could see is not known to carry traffic. Conntrack alone may be
 * `null` without deciding health: there is then no conntrack to measure in this
 * network namespace. A stack that cannot be known (no --stack and no hanat:stack
 * tag) is a configuration error: UsageError, exit 2, no verdict.
 */
import { servingAz, defaultRoute, type Ec2 } from '@hanat/core';
import { resolveConfig, type Options } from './config.js';
import { Ec2Api } from './ec2.js';
import { errorMessage } from './errors.js';
import { readIdentity, type Identity } from './identity.js';
import type { Imds } from './imds.js';
import type { Kernel } from './kernel.js';
import { CONNTRACK_HEADROOM } from './ha/health.js';

/** Conntrack use above this fraction of the table is unhealthy: new flows are about to be dropped. */
export { CONNTRACK_HEADROOM };

export interface CheckItem {
  ok: boolean | null;
  [detail: string]: unknown;
}

export interface CheckResult {
  healthy: boolean;
  /** Why the verdict is unhealthy: the checks that failed or could not run. */
  reason?: string | undefined;
  instanceId?: string | undefined;
  stack?: string | undefined;
  az?: string | undefined;
  checks: {
    forwarding: CheckItem;
    natRule: CheckItem;
    conntrack: CheckItem;
    routes: CheckItem;
  };
}

export interface CheckDeps {
  imds: Imds;
  kernel: Kernel;
  ec2: (region: string) => Ec2;
}

export async function check(options: Options, deps: CheckDeps): Promise<CheckResult> {
  let id: Identity | undefined;
  let idError: string | undefined;
  try {
    id = await readIdentity(deps.imds);
  } catch (err) {
    idError = errorMessage(err);
  }
  // Before anything is read: a stack that cannot be known is the caller's to fix (exit 2).
  const config = id ? resolveConfig(options, id) : undefined;

  const sysctls = await deps.kernel.readSysctls(['net.ipv4.ip_forward', 'net.netfilter.nf_conntrack_count', 'net.netfilter.nf_conntrack_max']);
  const forwarding: CheckItem = { ok: sysctls['net.ipv4.ip_forward'] === '1', ipForward: sysctls['net.ipv4.ip_forward'] ?? null };

  const nft = await deps.kernel.readNft();
  const elements = nft.elements ?? [];
  const missingCidrs = id ? id.vpcCidrs.filter((c) => !elements.includes(c.includes('/') ? c : `${c}/32`)) : [];
  const natRule: CheckItem = {
    ok: nft.table && nft.chainOk && nft.setOk && nft.rules.some((r) => r.exact) && elements.length > 0 && missingCidrs.length === 0,
    table: nft.table,
    rule: nft.rules.some((r) => r.exact),
    cidrs: elements,
    ...(missingCidrs.length ? { missingCidrs } : {}),
  };

  const count = Number(sysctls['net.netfilter.nf_conntrack_count']);
  const max = Number(sysctls['net.netfilter.nf_conntrack_max']);
  const conntrack: CheckItem =
    sysctls['net.netfilter.nf_conntrack_count'] === undefined || !(max > 0)
      ? { ok: null, reason: 'conntrack is not loaded in this network namespace' }
      : { ok: count < max * CONNTRACK_HEADROOM, count, max, usedPct: Math.round((count / max) * 1000) / 10 };

  let routes: CheckItem;
  if (!id || !config) {
    routes = { ok: null, reason: `IMDS: ${idError}` };
  } else {
    try {
      routes = await checkRoutes(deps.ec2(id.region), config, id);
    } catch (err) {
      routes = { ok: null, reason: errorMessage(err) };
    }
  }

  const checks = { forwarding, natRule, conntrack, routes };
  const problems = Object.entries(checks).flatMap(([name, c]) => {
    if (c.ok === false) return [`${name} failed${typeof c.reason === 'string' ? `: ${c.reason}` : ''}`];
    if (c.ok === null && name === 'routes') return [`routes not verified: ${String(c.reason)}`];
    return [];
  });
  return {
    healthy: problems.length === 0,
    ...(problems.length > 0 ? { reason: problems.join('; ') } : {}),
    instanceId: id?.instanceId,
    stack: config?.stack,
    az: config?.az,
    checks,
  };
}

async function checkRoutes(ec2: Ec2, config: { stack: string; az: string }, id: Identity): Promise<CheckItem> {
  try {
    const tables = (await new Ec2Api(ec2).privateRouteTables(config.stack)).filter((t) => servingAz(t.Tags) === config.az);
    const detail = tables.map((t) => {
      const r = defaultRoute(t);
      return {
        routeTableId: t.RouteTableId,
        target: r?.NetworkInterfaceId ?? r?.InstanceId ?? r?.GatewayId ?? null,
        state: r?.State ?? null,
        ok: r?.NetworkInterfaceId === id.eniId && r.State === 'active',
      };
    });
    return {
      ok: tables.length > 0 && detail.every((d) => d.ok),
      tables: detail,
      ...(tables.length === 0 ? { reason: `no private route table of ${config.stack} is served by ${config.az}` } : {}),
    };
  } finally {
    ec2.destroy();
  }
}
