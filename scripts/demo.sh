#!/usr/bin/env bash
# pnpm demo: hanat end to end on one machine, as root, in a few minutes.
#
# Sets up, starts the lab (the AWS emulator plus a VPC of network namespaces), deploys
# the stack with the real `hanat deploy`, shows the route tables and who owns them and
# `hanat status`, shows every AZ's private hosts reaching the internet through their own
# AZ's NAT, fails the second AZ over to the third by hand (`hanat failover`) and back
# (`--restore`), crashes one NAT in place (`hanat-lab fault crash`: how a NAT usually dies on
# AWS, a hardware failure, kernel panic or hang, with EC2 still reporting it running) and
# measures how long its AZ is cut off until its successor takes the routes over, waits for
# EC2's status checks and Auto Scaling to replace it, then tears everything down.
#
# The agents check their route tables every HANAT_DEMO_ROUTE_INTERVAL seconds (default 5,
# the agent's minimum; its own default is 30 s), so that the restore step, which waits for
# the second AZ's agent to take its routes back at its next check, stays short.
#
# AWS's delays are shortened so that the demo stays a few minutes long, and the demo says so
# on screen: the boot delay (Auto Scaling launch to a running instance; a real NAT instance
# takes ~30 s or more), EC2's status checks (every minute on AWS; here
# HANAT_DEMO_STATUS_CHECK_DELAY_MS) and the template's 120 s health check grace period (0
# here). bench/replacement-outage measures the outage with the real ones.
#
# Run it as root (the lab creates network namespaces): `pnpm demo` in a root shell.
#
# Environment: HANAT_DEMO_BOOT_DELAY_MS (default 3000), HANAT_DEMO_STATUS_CHECK_DELAY_MS
# (default 10000), HANAT_DEMO_AZS (default 3),
# HANAT_DEMO_LATENCY (aws|zero, default aws), HANAT_DEMO_ROUTE_INTERVAL (seconds, default 5),
# HANAT_DEMO_SKIP_SETUP=1 to skip setup.sh.
# HANAT_LAB_STATE_DIR (default /run/hanat-lab) is where hanat-lab publishes running labs;
# the e2e test (packages/lab/test/demo.test.ts) gives the demo a directory of its own.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run it as root (the lab creates network namespaces and netfilter rules)" >&2
  exit 2
fi

BOOT_DELAY_MS=${HANAT_DEMO_BOOT_DELAY_MS:-3000}
STATUS_CHECK_DELAY_MS=${HANAT_DEMO_STATUS_CHECK_DELAY_MS:-10000}
AZS=${HANAT_DEMO_AZS:-3}
LATENCY=${HANAT_DEMO_LATENCY:-aws}
ROUTE_INTERVAL=${HANAT_DEMO_ROUTE_INTERVAL:-5}
STACK=hanat-demo

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m'; off=$'\033[0m'; else bold=''; off=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
lab() { node packages/lab/bin/hanat-lab.mjs "$@"; }
hanat() { node packages/cli/bin/hanat.mjs "$@"; }

if [ "${HANAT_DEMO_SKIP_SETUP:-}" != 1 ]; then
  step "Setting up: Debian packages, pnpm, dependencies, bundles (scripts/setup.sh)"
  bash scripts/setup.sh
fi

step "Starting the lab: AWS emulator (latency: $LATENCY) + VPC in network namespaces (agent route check every ${ROUTE_INTERVAL} s)"
echo "  Shortened so that the demo stays short (AWS's own figures in brackets):"
echo "    boot delay ${BOOT_DELAY_MS} ms (a real NAT instance: 30 s or more)"
echo "    EC2 status checks find a crashed instance impaired after ${STATUS_CHECK_DELAY_MS} ms (AWS: checks run every minute)"
echo "    Auto Scaling health check grace period 0 s (hanat's template: 120 s)"
exports=$(lab up --detach --latency "$LATENCY" --boot-delay "$BOOT_DELAY_MS" --status-check-delay "$STATUS_CHECK_DELAY_MS" --health-check-grace 0 --agent-route-interval "$ROUTE_INTERVAL")
eval "$exports"
while IFS= read -r line; do echo "  $line"; done <<<"$exports"

# Once its prefix is known, every command names this lab (--lab), so that other labs running
# meanwhile (tests, benchmarks) are never touched, not even by the cleanup fallback.
prefix=
lab_up=1
teardown() {
  if [ "${lab_up:-}" = 1 ]; then
    lab_up=
    if [ -n "$prefix" ]; then
      lab down --lab "$prefix" || lab cleanup --lab "$prefix"
    else
      lab down
    fi
  fi
}
trap teardown EXIT
# shellcheck disable=SC2016 # JavaScript, not shell
prefix=$(lab status --json | node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(0, "utf8")).prefix)')
this_lab() { lab "$@" --lab "$prefix"; }

step "Deploying the stack with hanat deploy ($AZS AZs)"
hanat deploy --name "$STACK" --cidr-prefix 10.0 --azs "$AZS" --yes

step "Waiting until every AZ's private hosts reach the internet through their own AZ's NAT"
this_lab probe --check --wait 180

step "Status: route tables and their owners, NAT instances, private hosts"
this_lab status

step "hanat status: the verdict per AZ, as an operator sees it (the real CLI, Describe calls only)"
hanat status --name "$STACK"

step "Which NAT carries each private host's traffic (the address the internet host sees)"
this_lab probe --check

# The AZs, sorted: the second fails over to the third (to the first with 2 AZs), the first's NAT crashes.
# shellcheck disable=SC2016 # JavaScript, not shell
azs=$(this_lab status --json | node -e 'const s=JSON.parse(require("fs").readFileSync(0,"utf8")); const azs=[...new Set(s.hosts.map(h=>h.az))].sort(); process.stdout.write(`${azs[0]} ${azs[1]} ${azs[2] ?? azs[0]}`)')
read -r first_az second_az third_az <<<"$azs"

step "Manual failover: moving $second_az's traffic to $third_az's NAT (hanat failover --az $second_az --to $third_az)"
hanat failover --name "$STACK" --az "$second_az" --to "$third_az" --yes
echo "  $second_az's private hosts, now answered by $third_az's public address:"
this_lab probe --az "$second_az" --check --via "$third_az" --wait 30
echo "  hanat status shows the pin (its verdict table; the NATs and EIPs are as above):"
verdicts=$(hanat status --name "$STACK")
sed '/^$/,$d' <<<"$verdicts"

step "Restoring $second_az (hanat failover --restore): its own NAT takes the routes back at its next route check"
hanat failover --name "$STACK" --az "$second_az" --restore --yes
echo "  $second_az's private hosts, answered by their own AZ's public address again:"
this_lab probe --az "$second_az" --check --wait $((ROUTE_INTERVAL + 30))
echo "  hanat status:"
verdicts=$(hanat status --name "$STACK")
sed '/^$/,$d' <<<"$verdicts"
step "Crashing the NAT instance of $first_az in place (hardware failure, kernel panic, hang) and measuring the outage"
echo "  It stops answering anything, but EC2 keeps reporting it running and its route active: only its"
echo "  status checks will notice. Its peers miss its heartbeats within a second or two and its successor"
echo "  takes $first_az's routes over."
result=$(this_lab fault crash "$first_az" --wait --timeout 600 --json)
# shellcheck disable=SC2016 # JavaScript, not shell
summary=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const ms = r.outages.map((o) => o.outageMs);
  const line = (o) => `  ${o.az}  ${o.hostId}  ${o.proto}  ${(o.outageMs / 1000).toFixed(1)} s  (answered by ${o.answerBefore} before, ${o.answerAfter} after)`;
  console.log(`crashed ${r.instances.join(", ")}`);
  console.log(r.outages.map(line).join("\n"));
  console.log(`OUTAGE ${(Math.max(...ms) / 1000).toFixed(1)} s (worst of ${ms.length} probe streams, until the successor took over)`);
' <<<"$result")
echo "$summary" | grep -v '^OUTAGE'

step "Waiting for EC2's status checks (${STATUS_CHECK_DELAY_MS} ms here) and Auto Scaling to replace the crashed NAT"
echo "  Impaired status checks make Auto Scaling mark it Unhealthy, terminate it and launch a replacement;"
echo "  once healthy, the replacement takes $first_az's routes back (after the agents' failback hold-down)."
this_lab probe --check --wait 180

step "Tearing down: hanat destroy, then the lab"
hanat destroy --name "$STACK" --yes
teardown

step "Measured outage after the NAT of $first_az crashed"
echo "$summary" | sed -n 's/^OUTAGE /  /p'
