"""Interruption at every step: the doit process is killed (SIGKILL, as the OOM killer or
`kill -9` would, and SIGINT, as Ctrl-C would) right after each command that changes the host,
then rerun. In between no stamp claims more than is there; after the rerun the host equals
one built without interruption.

Only doit itself gets the signal, and only between two system calls: it is stopped first
(SIGSTOP lets a file system call in flight complete) and then killed or interrupted. zfs-fuse
wedges when a FUSE request is interrupted, which real ZFS does not; at the Python level the
kill still lands anywhere. A command doit started finishes on its own, and the rerun starts
once it has.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import zfspool
from tests.support.freebsd_base import CERT_HASHES, LIBC_SIZE
from tests.support.host import RELEASE as R
from tests.support.host import REPO, Host
from tests.support.jailview import resolve
from tests.support.mirror import Mirror

BASE, SKELETON = f"templates/{R}-base", f"templates/{R}-skeleton"


def start_run(host: Host) -> subprocess.Popen[str]:
    host.seed_host()
    host.write_config()
    return subprocess.Popen(
        [sys.executable, "-m", "doit", "run", "-f", str(REPO / "dodo.py"), "jail:pg-1",
         f"config={host.config_path}"], env=host.env(), cwd=host.tmp, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def log_lines(host: Host) -> int:
    log = host.state_dir / "commands.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "TtZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def signal_doit(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Stop doit, signal it, then wait until every process it started has ended."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGSTOP)
        while not stopped(proc.pid):
            time.sleep(0.001)
        os.kill(proc.pid, sig)
        os.kill(proc.pid, signal.SIGCONT)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # its session still has a process
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError("a command started by the interrupted run did not end")


def interrupt(host: Host, after: int, sig: signal.Signals) -> None:
    """Run doit and signal it once `after` commands have completed."""
    proc = start_run(host)
    deadline = time.monotonic() + 60
    while log_lines(host) < after and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    signal_doit(proc, sig)


def tree(root: Path) -> dict[str, str]:
    """Every entry below root: its type and link target or content digest."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                entries[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                entries[rel] = "dir"
            else:
                entries[rel] = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return entries


def state(host: Host) -> dict[str, Any]:
    """The host's end state, with this host's own names and paths taken out."""
    root_mp = str(host.mountpoint())

    def local(text: str) -> str:
        return text.replace(root_mp, "<mnt>").replace(host.root, "<root>").replace(
            str(host.tmp), "<tmp>")

    listing = zfspool.run("zfs", "get", "-H", "-p", "-r", "-o", "name,property,value,source",
                          "type,origin,thinjail:extract,thinjail:tzdns,thinjail:update,"
                          "thinjail:skeleton,thinjail:certs,thinjail:patch,thinjail:created",
                          host.root)
    datasets = sorted(local(line) for line in listing.splitlines()
                      if "inherited" not in line and not line.endswith("\t-\t-"))
    trees = {name: tree(host.mountpoint(name)) for name in (BASE, SKELETON, "containers/pg-1")}
    files = {local(str(p)): local(p.read_text()) for p in sorted(host.etc.rglob("*"))
             if p.is_file()}
    files["fstab"] = local((host.mountpoint() / "pg-1-nullfs-base.fstab").read_text())
    interfaces = {n: i["members"] for n, i in host.interfaces().items()}
    return {"datasets": datasets, "trees": trees, "files": files, "running": host.running(),
            "interfaces": interfaces,
            "started": (host.state_dir / "started/pg-1").is_file()}


def assert_no_false_stamp(host: Host) -> None:
    """Whatever a stamp or a finished-looking object claims is there."""
    names = host.names()

    def stamp(dataset: str, key: str) -> bool:
        return host.dataset(dataset) in names and host.get(dataset, f"thinjail:{key}") != "-"

    if stamp(BASE, "extract"):
        base = host.mountpoint(BASE)
        assert (base / "bin/freebsd-version").is_file()
        assert (base / "lib/libc.so.7").stat().st_size == LIBC_SIZE
    if stamp(BASE, "skeleton"):
        assert stamp(SKELETON, "skeleton")
        base = host.mountpoint(BASE)
        assert (base / "etc").is_symlink() and (base / "var").is_symlink()
        assert not [p for p in base.iterdir() if "thinjail" in p.name]
        assert (host.mountpoint(SKELETON) / "var/empty").is_dir()
    if stamp(SKELETON, "certs"):
        base, skeleton = host.mountpoint(BASE), host.mountpoint(SKELETON)
        for cert, hashed in CERT_HASHES.items():
            assert resolve(base, skeleton, f"/etc/ssl/certs/{hashed}")[1].is_file(), cert
    if any("@" in n for n in names):
        assert stamp(SKELETON, "certs") and stamp(BASE, "tzdns")
    media = host.mountpoint("media") if host.dataset("media") in names else Path("/nonexistent")
    archive = media / f"{R}-amd64-base.txz"
    if archive.exists():  # only a verified download gets the final name
        manifest_sha = (media / f"{R}-amd64-MANIFEST").read_text().split("base.txz\t")[1][:64]
        assert hashlib.sha256(archive.read_bytes()).hexdigest() == manifest_sha
    for rendered in host.etc.rglob("*.conf"):
        text = rendered.read_text()
        assert text.startswith("# Managed by thinjail") or rendered.name == "rc.conf"
        if rendered.parent.name == "jail.conf.d":
            assert text.rstrip().endswith("}")


def kill_points(reference: list[dict[str, Any]]) -> list[tuple[int, str, bool]]:
    """After which command to kill: after every command that changes something; for SIGINT,
    only after the first one of each step."""
    points, seen_steps = [], set()
    for index, entry in enumerate(reference):
        if entry["changes"]:
            first = entry["step"] not in seen_steps
            seen_steps.add(entry["step"])
            points.append((index + 1, entry["step"], first))
    return points


def fresh(host: Host, label: str) -> Host:
    """Another stand-in host; its datasets go with the fixture host's parent dataset."""
    tmp = host.tmp / label
    tmp.mkdir()
    return Host(pool=host.pool, root=f"{host.root}-{label}/{uuid.uuid4().hex[:6]}", tmp=tmp,
                mirror_url=host.mirror_url)


@pytest.fixture
def scratch(pool: str, mirror: Mirror, tmp_path: Path) -> Host:
    """A stand-in host whose ~40 sibling hosts are left to the session's `zpool destroy`:
    zfs-fuse keeps freshly written datasets busy for long, and destroying some 300 of them
    one by one would take longer than the test."""
    return Host(pool=pool, root=f"{pool}/interruptions-{uuid.uuid4().hex[:6]}/jails",
                tmp=tmp_path, mirror_url=mirror.url)


def test_every_interruption_converges(scratch: Host, mirror: Mirror) -> None:
    host = scratch
    reference_host = fresh(host, "reference")
    assert reference_host.doit("run", "jail:pg-1").returncode == 0
    reference = [json.loads(line) for line in
                 (reference_host.state_dir / "commands.log").read_text().splitlines()]
    expected = state(reference_host)

    tried: list[str] = []
    for after, step, first in kill_points(reference):
        for sig in (signal.SIGKILL, signal.SIGINT) if first else (signal.SIGKILL,):
            label = f"k{after}-{sig.name}"
            victim = fresh(host, label)
            interrupt(victim, after, sig)
            assert_no_false_stamp(victim)
            rerun = victim.doit("run", "jail:pg-1")
            assert rerun.returncode == 0, f"{label} ({step}): {rerun.output}"
            assert state(victim) == expected, f"{label} ({step}) did not converge"
            tried.append(f"{step}@{after}/{sig.name}")
    # The download itself, interrupted mid-stream.
    for sig in (signal.SIGKILL, signal.SIGINT):
        victim = fresh(host, f"fetch-{sig.name}")
        mirror.faults[f"/amd64/amd64/{R}/base.txz"] = ("stall", 5)
        proc = start_run(victim)
        part = Path("/nonexistent")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not part.exists():
            if victim.dataset("media") in victim.names():
                part = victim.mountpoint("media") / f"{R}-amd64-base.txz.part"
            time.sleep(0.05)
        signal_doit(proc, sig)
        mirror.faults.clear()
        assert not (victim.mountpoint("media") / f"{R}-amd64-base.txz").exists()
        assert victim.doit("run", "jail:pg-1").returncode == 0
        assert state(victim) == expected
        tried.append(f"fetch/{sig.name}")
    print(f"\ninterruption points tried: {len(tried)}: {', '.join(tried)}")
    assert len(tried) >= 30
