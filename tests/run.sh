#!/usr/bin/env bash
# Set up and run thinjail's tests on Debian/Ubuntu, as root: zfs-fuse and bsdtar from apt,
# the project and its test tools in .venv, zfs-fuse started, then ruff and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v zfs-fuse >/dev/null || missing+=(zfs-fuse)
command -v bsdtar >/dev/null || missing+=(libarchive-tools)
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# zfs-fuse forks into the background; wait until it answers.
pgrep -x zfs-fuse >/dev/null || zfs-fuse
for _ in $(seq 1 50); do zpool list >/dev/null 2>&1 && break; sleep 0.2; done
zpool list >/dev/null

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
