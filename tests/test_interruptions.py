"""Interruption at every step: the doit process is killed (SIGKILL, as the OOM killer or
`kill -9` would) right after each command that changes the host, interrupted (SIGINT, as
Ctrl-C would) after the first command of each step, and both just before and inside doit's
state save; then rerun. In between no stamp claims more than is there; after the rerun the
host equals one built without interruption, and a third run does nothing.

Each point is its own test. doit stops itself at the point (tests/support/stopping_doit.py:
between two Python statements, so a file system call in flight completes; zfs-fuse wedges
when a FUSE request is interrupted, which real ZFS does not), and the test then signals it
and checks that doit was still running and that the signal ended it. A command doit started
finishes on its own, and the rerun starts once it has.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.freebsd_base import CERT_HASHES, LIBC_SIZE
from tests.support.host import RELEASE as R
from tests.support.host import Host
from tests.support.interrupting import (
    command_points,
    datasets,
    interrupt,
    is_stopped,
    localizer,
    signal_doit,
    start_run,
    tree,
)
from tests.support.jailview import resolve
from tests.support.mirror import Mirror

pytestmark = pytest.mark.builds_templates  # about building them from the mirror

BASE, SKELETON = f"templates/{R}-base", f"templates/{R}-skeleton"


def state(host: Host) -> dict[str, Any]:
    """The host's end state, with this host's own names and paths taken out."""
    local = localizer(host)
    listed = datasets(host, "thinjail:extract,thinjail:tzdns,thinjail:update,"
                            "thinjail:skeleton,thinjail:certs,thinjail:patch,thinjail:created")
    trees = {name: tree(host.mountpoint(name)) for name in (BASE, SKELETON, "containers/pg-1")}
    files = {local(str(p)): local(p.read_text()) for p in sorted(host.etc.rglob("*"))
             if p.is_file()}
    files["fstab"] = local((host.mountpoint() / "pg-1-nullfs-base.fstab").read_text())
    interfaces = {n: i["members"] for n, i in host.interfaces().items()}
    return {"datasets": listed, "trees": trees, "files": files, "running": host.running(),
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


# The steps of the host-changing commands of a first run, in order: a kill point after each.
CHANGING_STEPS = (["bridge"] * 3 + ["host"] * 5 + ["extract"] * 3 + ["tzdns"]
                  + ["update"] * 4 + ["skeleton"] * 8 + ["certs", "snapshot", "clone", "rc",
                                                         "start"])


def points() -> list[Any]:
    """SIGKILL after every host-changing command; SIGINT (Ctrl-C) after the first one of each
    step; both before doit saves its state and inside the save."""
    cases = command_points(CHANGING_STEPS)
    for where in ("before", "inside"):
        for sig, name in ((signal.SIGKILL, "kill"), (signal.SIGINT, "int")):
            cases.append(pytest.param(f"save:{where}", sig, id=f"save-{where}-{name}"))
    return cases


@dataclass(frozen=True)
class Reference:
    """A host built without interruption, and the host-changing commands it ran."""

    state: dict[str, Any]
    changing_steps: list[str]


@pytest.fixture(scope="module")
def reference(pool: str, mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    host = Host(pool=pool, root=f"{pool}/interruptions-{uuid.uuid4().hex[:6]}/reference",
                tmp=tmp_path_factory.mktemp("reference"), mirror_url=mirror.url)
    assert host.doit("run", "jail:pg-1").returncode == 0
    log = [json.loads(line) for line in
           (host.state_dir / "commands.log").read_text().splitlines()]
    return Reference(state(host), [e["step"] for e in log if e["changes"]])


@pytest.fixture
def victim(pool: str, mirror: Mirror, tmp_path: Path) -> Host:
    """A stand-in host whose datasets are left to the session's `zpool destroy`: zfs-fuse
    keeps freshly written datasets busy for long, and destroying each one would take longer
    than the test."""
    return Host(pool=pool, root=f"{pool}/interruptions-{uuid.uuid4().hex[:6]}/jails",
                tmp=tmp_path, mirror_url=mirror.url)


def test_the_kill_points_are_the_reference_runs_commands(reference: Reference) -> None:
    assert reference.changing_steps == CHANGING_STEPS


@pytest.mark.parametrize(("stop_at", "sig"), points())
def test_an_interrupted_run_converges(victim: Host, reference: Reference, stop_at: str,
                                      sig: signal.Signals) -> None:
    where = interrupt(victim, stop_at, sig)
    assert where.split(" ")[0] == stop_at
    assert_no_false_stamp(victim)
    rerun = victim.doit("run", "jail:pg-1")
    assert rerun.returncode == 0, f"{where}: {rerun.output}"
    assert "Traceback" not in rerun.output
    assert state(victim) == reference.state, f"{where} did not converge"
    again = victim.doit("run", "jail:pg-1")
    assert again.ran() == set() and again.changing_commands() == []


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill", "int"])
def test_an_interrupted_download_converges(victim: Host, mirror: Mirror, reference: Reference,
                                           sig: signal.Signals) -> None:
    mirror.faults[f"/amd64/amd64/{R}/base.txz"] = ("stall", 5)
    proc = start_run(victim)
    part = Path("/nonexistent")
    deadline = time.monotonic() + 30
    while not part.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the download never began"
        if victim.dataset("media") in victim.names():
            part = victim.mountpoint("media") / f"{R}-amd64-base.txz.part"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGSTOP)
    while not is_stopped(proc.pid):
        time.sleep(0.001)
    signal_doit(proc, sig)
    mirror.faults.clear()
    assert not (victim.mountpoint("media") / f"{R}-amd64-base.txz").exists()
    rerun = victim.doit("run", "jail:pg-1")
    assert rerun.returncode == 0, rerun.output
    assert state(victim) == reference.state
