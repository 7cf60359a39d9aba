#!/usr/bin/env bash
# Sets up a fresh Debian machine to build, test and demo hanat.
# Idempotent. Run as root (the kernel and lab tests need it).
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=$(node -p "require('./package.json').packageManager.split('@')[1]")

# Debian packages the kernel, lab and image checks use.
APT_PACKAGES=(iproute2 iptables nftables conntrack iperf3 procps shellcheck packer systemd systemd-container awscli bsdutils openssh-client)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pnpm, at the version package.json pins (npm, because corepack's signature check
# fails against some registry mirrors).
if ! command -v pnpm >/dev/null || [ "$(pnpm -v)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm@$PNPM_VERSION" >&2
  npm install -g --silent "pnpm@$PNPM_VERSION"
  hash -r
fi

pnpm install --frozen-lockfile --reporter=append-only >&2
node scripts/build.mjs
