#!/usr/bin/env bash
# Turns an Amazon Linux 2023 host into a hanat NAT image: Node 22 and the
# netfilter tools, the agent bundle in /opt/hanat, the hardened
# hanat-agent.service (enabled), a sysctl drop-in, and no services a NAT does
# not need. Packer runs it on the build instance (templates/packer); tests run
# it against a throw-away directory with --root and an injected package step.
#
# Idempotent: every file is compared first and written only when it differs,
# so a second run changes nothing. Any failure stops the script with a message.
set -euo pipefail

readonly PROG=provision-nat
readonly NODE_BIN=/usr/bin/node-22
readonly NODE_MAJOR=22
# nodejs22 installs /usr/bin/node-22 (AL2023 namespaces Node by major version;
# /usr/bin/node is an alternatives link that may point elsewhere). The agent
# runs nft (its NAT table), sysctl (procps-ng) and ip (iproute); iptables-nft
# is there for operators and tools that speak iptables, on the same nftables
# backend.
readonly PACKAGES=(nodejs22 nftables iptables-nft iproute procps-ng)
readonly DEFAULT_PKG_INSTALL="dnf install -y --setopt=install_weak_deps=False"
readonly AGENT_DIR=/opt/hanat
readonly UNIT=hanat-agent.service
readonly UNIT_PATH=/etc/systemd/system/$UNIT
readonly SYSCTL_PATH=/etc/sysctl.d/90-hanat.conf
# Units a NAT instance does not need, masked when the image has them:
#   dnf-makecache.timer  hourly repository metadata refresh: the image is
#                        replaced, not updated in place, and the refresh costs
#                        a nano instance memory and CPU;
#   firewalld.service    manages its own nftables ruleset and would fight the
#                        agent's NAT rules;
#   rpcbind.*            the NFS portmapper, listening on port 111;
#   postfix.service      a mail server.
# sshd (operator access from the VPC), chronyd (AWS request signing needs the
# right time), systemd-networkd/resolved and cloud-init stay.
readonly UNNEEDED_UNITS=(dnf-makecache.timer firewalld.service rpcbind.service rpcbind.socket postfix.service)

usage() {
  cat <<USAGE
Usage: scripts/provision-nat.sh --bundle PATH [--root DIR] [--assets DIR] [--no-packages]

Provisions a hanat NAT instance image (Amazon Linux 2023). Run as root.

  --bundle PATH   the agent bundle (packages/agent/dist/hanat-agent.cjs,
                  built by: node scripts/build.mjs agent)
  --root DIR      provision the tree under DIR instead of / (for tests and
                  offline images); the package step then needs
                  HANAT_PKG_INSTALL or --no-packages
  --assets DIR    where hanat-agent.service and 90-hanat.conf are
                  (default: the systemd/ directory next to this script)
  --no-packages   skip installing packages (they must already be there)
  -h, --help      show this help

Environment:
  HANAT_PKG_INSTALL  command that installs packages; the package names are
                     appended and HANAT_ROOT is exported to it
                     (default on /: $DEFAULT_PKG_INSTALL)
USAGE
}

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}

usage_error() {
  echo "$PROG: $*" >&2
  echo "Run scripts/provision-nat.sh --help for usage." >&2
  exit 2
}

log() { echo "$PROG: $*" >&2; }

changes=0
changed() {
  changes=$((changes + 1))
  log "$*"
}

root=/
bundle=
assets="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/systemd"
packages=yes

while (($#)); do
  case $1 in
    --bundle) [[ $# -ge 2 ]] || usage_error "--bundle needs a path"; bundle=$2; shift 2 ;;
    --root) [[ $# -ge 2 ]] || usage_error "--root needs a directory"; root=$2; shift 2 ;;
    --assets) [[ $# -ge 2 ]] || usage_error "--assets needs a directory"; assets=$2; shift 2 ;;
    --no-packages) packages=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done

[[ -n $bundle ]] || usage_error "--bundle PATH is required (build the agent with: node scripts/build.mjs agent)"
[[ $(id -u) -eq 0 ]] || die "must run as root: it installs packages and root-owned files"
[[ -d $root ]] || die "--root '$root' is not a directory"
root=$(cd "$root" && pwd -P)
# Paths below are "$root$path"; with root=/ that would start with //.
if [[ $root == / ]]; then prefix=; else prefix=$root; fi

if [[ ! -f $bundle ]]; then
  die "agent bundle '$bundle' does not exist; build it with: node scripts/build.mjs agent"
fi
[[ -s $bundle ]] || die "agent bundle '$bundle' is empty; rebuild it with: node scripts/build.mjs agent"
for asset in "$UNIT" 90-hanat.conf; do
  [[ -f $assets/$asset ]] || die "'$assets/$asset' is missing (--assets points at the wrong directory?)"
done
command -v systemctl >/dev/null || die "systemctl not found: this script needs systemd's tools"

# ensure_dir PATH: a root-owned directory, mode 0755.
ensure_dir() {
  local dir=$prefix$1
  if [[ ! -d $dir ]]; then
    install -d -o root -g root -m 0755 "$dir"
    changed "created $1"
  fi
  if [[ $(stat -c '%u:%g %a' "$dir") != "0:0 755" ]]; then
    chown root:root "$dir"
    chmod 0755 "$dir"
    changed "fixed owner/mode of $1"
  fi
}

# same_content A B: whether two files hold the same bytes. sha256sum is in
# coreutils, like install and stat, so this needs no package beyond them (cmp
# would need diffutils, which a minimal image need not have).
same_content() {
  local a b
  a=$(sha256sum <"$1") || die "cannot read $1"
  b=$(sha256sum <"$2") || die "cannot read $2"
  [[ $a == "$b" ]]
}

# ensure_file SOURCE PATH MODE: a root-owned copy of SOURCE, written only when
# the content differs; owner and mode are corrected in place.
ensure_file() {
  local src=$1 path=$2 mode=$3
  local dest=$prefix$path
  ensure_dir "$(dirname "$path")"
  if [[ -L $dest || (-e $dest && ! -f $dest) ]]; then
    die "$path exists and is not a regular file; remove it and run again"
  fi
  if [[ ! -f $dest ]] || ! same_content "$src" "$dest"; then
    install -o root -g root -m "$mode" "$src" "$dest"
    changed "installed $path"
  elif [[ $(stat -c '%u:%g %a' "$dest") != "0:0 ${mode#0}" ]]; then
    chown root:root "$dest"
    chmod "$mode" "$dest"
    changed "fixed owner/mode of $path"
  fi
}

install_packages() {
  if [[ $packages == no ]]; then
    log "packages: skipped (--no-packages)"
    return
  fi
  local spec=${HANAT_PKG_INSTALL:-}
  if [[ -z $spec ]]; then
    [[ $root == / ]] || die "installing packages under --root '$root' needs HANAT_PKG_INSTALL (a command) or --no-packages"
    command -v dnf >/dev/null || die "dnf not found: this script provisions Amazon Linux 2023 (or pass --no-packages)"
    spec=$DEFAULT_PKG_INSTALL
  fi
  local cmd
  read -r -a cmd <<<"$spec"
  log "packages: ${cmd[*]} ${PACKAGES[*]}"
  HANAT_ROOT=$root "${cmd[@]}" "${PACKAGES[@]}" >&2 || die "package installation failed: ${cmd[*]} ${PACKAGES[*]}"
}

check_node() {
  [[ -x $prefix$NODE_BIN ]] || die "$NODE_BIN is missing after the package step (package nodejs22); the unit runs the agent with it"
  if [[ $root == / ]]; then
    local version
    version=$("$NODE_BIN" --version) || die "$NODE_BIN --version failed"
    [[ $version == v$NODE_MAJOR.* ]] || die "$NODE_BIN is $version, expected Node $NODE_MAJOR"
    log "node: $NODE_BIN $version"
  fi
}

enable_agent() {
  if [[ $(systemctl --root="$root" is-enabled "$UNIT" 2>/dev/null) != enabled ]]; then
    systemctl --root="$root" enable "$UNIT" 2>&1 | sed "s/^/$PROG: /" >&2
    [[ $(systemctl --root="$root" is-enabled "$UNIT" 2>/dev/null) == enabled ]] || die "systemctl could not enable $UNIT"
    changed "enabled $UNIT"
  fi
}

unit_exists() {
  local dir
  for dir in /etc/systemd/system /usr/lib/systemd/system /lib/systemd/system; do
    [[ -e $prefix$dir/$1 || -L $prefix$dir/$1 ]] && return 0
  done
  return 1
}

mask_unneeded() {
  local unit
  for unit in "${UNNEEDED_UNITS[@]}"; do
    unit_exists "$unit" || continue
    [[ $(systemctl --root="$root" is-enabled "$unit" 2>/dev/null) == masked ]] && continue
    systemctl --root="$root" disable "$unit" >/dev/null 2>&1 || true
    systemctl --root="$root" mask "$unit" 2>&1 | sed "s/^/$PROG: /" >&2
    [[ $(systemctl --root="$root" is-enabled "$unit" 2>/dev/null) == masked ]] || die "systemctl could not mask $unit"
    changed "masked $unit (a NAT does not need it)"
  done
}

log "provisioning ${root} with agent bundle $bundle"
install_packages
check_node
ensure_dir "$AGENT_DIR"
ensure_file "$bundle" "$AGENT_DIR/hanat-agent.cjs" 0644
ensure_file "$assets/$UNIT" "$UNIT_PATH" 0644
ensure_file "$assets/90-hanat.conf" "$SYSCTL_PATH" 0644
enable_agent
mask_unneeded

# On a live host, let systemd see a new or changed unit (the image build runs
# on one; the agent is not started there, only enabled for the next boot).
if ((changes)) && [[ $root == / && -d /run/systemd/system ]]; then
  systemctl daemon-reload
fi
log "done: $changes change(s)"
