#!/usr/bin/env bash
# Runs the README's test command, ./scripts/test.sh, on a Debian 12 machine that has never seen
# the project: a fresh debootstrap chroot holding only Debian's minimal base plus python3, pip,
# git and CA certificates, and a fresh `git clone` of the current branch. Whatever the tests
# need beyond that, test.sh must install; anything it forgets fails there.
#
# The chroot runs in its own network namespace, so its loopback is its own (its PostgreSQL on
# 127.0.0.1:5432 and its Dovecot cannot meet services of this machine); slirp4netns gives that
# namespace a user-mode route out, used only for Debian's mirror and PyPI.
#
# Usage (as root): scripts/clean-debian-check.sh [pytest arguments]
#   CLEAN_ROOT=/var/tmp/mailwright-clean   where the chroot lives (made once, reused)
#   CLEAN_FRESH=1                          make the chroot anew first
# The log is $CLEAN_ROOT.log; the exit status is test.sh's.
set -euo pipefail
root=${CLEAN_ROOT:-/var/tmp/mailwright-clean}
repo=$(cd "$(dirname "$0")/.." && pwd)
branch=$(git -C "$repo" rev-parse --abbrev-ref HEAD)
[ "$(id -u)" = 0 ] || { echo "clean-debian-check: needs root (debootstrap, chroot, namespaces)" >&2; exit 2; }
for tool in debootstrap slirp4netns; do
  command -v "$tool" >/dev/null || { apt-get update -qq; apt-get install -y -qq "$tool" >/dev/null; }
done

if [ "${CLEAN_FRESH:-0}" = 1 ]; then rm -rf --one-file-system "$root"; fi
if [ ! -x "$root/usr/bin/apt-get" ]; then
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi

cleanup() {
  # What test.sh left running inside (its PostgreSQL, a Dovecot): every process whose root is
  # the chroot was started by this script.
  for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/root" 2>/dev/null)" = "$root" ] && kill "${proc#/proc/}" 2>/dev/null
  done
  umount -R -l "$root" 2>/dev/null || true
  [ -n "${slirp:-}" ] && kill "$slirp" 2>/dev/null || true
}
trap cleanup EXIT
# The root is a mount point of its own, as on a real machine: `ip netns exec` (the outbound
# journey test) makes / a slave mount and fails where / is a plain directory.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs shm "$root/dev/shm"
echo "nameserver 10.0.2.3" > "$root/etc/resolv.conf"   # slirp4netns's DNS forwarder
# Local CA certificates of this machine (a network that inspects TLS needs them to reach the
# registries at all); nothing else of the host's configuration goes in.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true

# A fresh clone of this branch, as a newcomer gets it (committed files only).
rm -rf "$root/work/mailwright"
mkdir -p "$root/work"
git clone -q --no-local --branch "$branch" "$repo" "$root/work/mailwright"
echo "clean-debian-check: $(git -C "$root/work/mailwright" log --oneline -1) in $root"

inside=$(cat <<'SCRIPT'
set -euo pipefail
for _ in $(seq 1 100); do awk '$2 == "00000000" {f = 1} END {exit !f}' /proc/net/route && break; sleep 0.1; done
for _ in $(seq 1 100); do getent hosts deb.debian.org >/dev/null && break; sleep 0.2; done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-pip git ca-certificates >/dev/null
update-ca-certificates >/dev/null
python3 --version
cd /work/mailwright
./scripts/test.sh "$@"
SCRIPT
)
pidfile=$(mktemp)
# `unshare` without --fork: the shell it runs is the namespace's first process; its pid is
# what slirp4netns attaches to.
unshare --net -- bash -c 'echo $$ > "$0"; ip link set lo up; shift; exec "$@"' "$pidfile" -- \
  chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 CI=true /bin/bash -c "$inside" bash "$@" &
ns=$!
for _ in $(seq 1 50); do [ -s "$pidfile" ] && break; sleep 0.1; done
nspid=$(cat "$pidfile")
slirp4netns --configure --mtu=65520 --disable-host-loopback "$nspid" tap0 >/dev/null 2>&1 &
slirp=$!
rm -f "$pidfile"
status=0
wait "$ns" || status=$?
echo "clean-debian-check: test.sh exited $status"
exit "$status"
