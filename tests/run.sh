#!/usr/bin/env bash
# Set up and run thinjail's tests on Debian/Ubuntu, as root: zfs-fuse, bsdtar, sshd, sudo from apt,
# the project and its test tools in .venv, zfs-fuse started, then ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v zfs-fuse >/dev/null || missing+=(zfs-fuse)
command -v bsdtar >/dev/null || missing+=(libarchive-tools)
# The fleet tests reach their hosts over real SSH as a user with sudo; ACLs let their
# controller user reach this checkout's Python.
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v sudo >/dev/null || missing+=(sudo)
command -v setfacl >/dev/null || missing+=(acl)
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# A zfs-fuse daemon left wedged by an earlier run (it can hang under concurrent mounts)
# is restarted; zfs-fuse forks into the background, so wait until it answers.
if pgrep -x zfs-fuse >/dev/null && ! timeout 20 zpool list >/dev/null 2>&1; then
  pkill -9 -x zfs-fuse || true
  sleep 1
  awk '$3 ~ /^fuse/ && $2 != "/sys/fs/fuse/connections" {print $2}' /proc/mounts | sort -r |
    while read -r mnt; do umount -l "$mnt" || true; done
fi
pgrep -x zfs-fuse >/dev/null || zfs-fuse
for _ in $(seq 1 50); do timeout 5 zpool list >/dev/null 2>&1 && break; sleep 0.2; done
timeout 20 zpool list >/dev/null

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check .
# Two workers, each test sent to the first free one (a module's pool is made in each worker
# that runs its tests); ZFS changes from both pass through thinjail's host-wide lock
# (tests/support/zfspool.py).
exec .venv/bin/python -m pytest -n 2 --dist load "$@"
