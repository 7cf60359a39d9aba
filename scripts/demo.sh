#!/usr/bin/env bash
# pnpm demo: hanat end to end on one machine, as root, in a few minutes.
#
# Sets up, starts the lab (the AWS emulator plus a VPC of network namespaces), deploys
# the stack with the real `hanat deploy`, shows the route tables and who owns them and
# `hanat status`, shows every AZ's private hosts reaching the internet through their own
# AZ's NAT, fails the second AZ over to the third by hand (`hanat failover`) and back
# (`--restore`), kills one NAT and measures how long its AZ is cut off until Auto Scaling's
# replacement takes the routes back, then tears everything down.
#
# The agents check their route tables every HANAT_DEMO_ROUTE_INTERVAL seconds (default 5,
# the agent's minimum; its own default is 30 s), so that the restore step, which waits for
# the second AZ's agent to take its routes back at its next check, stays short.
#
# The boot delay (Auto Scaling launch to a running instance) is shortened to a few seconds
# so the demo is quick; a real NAT instance takes ~30 s or more to boot, see
# bench/replacement-outage for the outage with a realistic boot delay.
#
# Run it as root (the lab creates network namespaces): `pnpm demo` in a root shell.
#
# Environment: HANAT_DEMO_BOOT_DELAY_MS (default 3000), HANAT_DEMO_AZS (default 3),
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

step "Starting the lab: AWS emulator (latency: $LATENCY) + VPC in network namespaces (boot delay ${BOOT_DELAY_MS} ms, agent route check every ${ROUTE_INTERVAL} s)"
exports=$(lab up --detach --latency "$LATENCY" --boot-delay "$BOOT_DELAY_MS" --agent-route-interval "$ROUTE_INTERVAL")
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

# The AZs, sorted: the second fails over to the third (to the first with 2 AZs), the first's NAT is killed.
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
step "Killing the NAT instance of $first_az (like a hardware failure) and measuring the outage"
echo "  Its peers notice within a second and its successor takes $first_az's routes over; Auto Scaling"
echo "  replaces it after the boot delay, and the replacement takes the routes back once healthy."
result=$(this_lab fault kill "$first_az" --wait --timeout 600 --json)
# shellcheck disable=SC2016 # JavaScript, not shell
summary=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const ms = r.outages.map((o) => o.outageMs);
  const line = (o) => `  ${o.az}  ${o.hostId}  ${o.proto}  ${(o.outageMs / 1000).toFixed(1)} s  (answered by ${o.answerBefore} before, ${o.answerAfter} after)`;
  console.log(`killed ${r.instances.join(", ")}`);
  console.log(r.outages.map(line).join("\n"));
  console.log(`OUTAGE ${(Math.max(...ms) / 1000).toFixed(1)} s (worst of ${ms.length} probe streams, until the successor took over)`);
' <<<"$result")
echo "$summary" | grep -v '^OUTAGE'
this_lab probe --check --wait 60

step "Tearing down: hanat destroy, then the lab"
hanat destroy --name "$STACK" --yes
teardown

step "Measured outage after killing the NAT of $first_az"
echo "$summary" | sed -n 's/^OUTAGE /  /p'
