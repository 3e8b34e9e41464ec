"""Interruption of a run that makes a new patch level and moves its jail there: the doit
process is killed (SIGKILL) right after each command of that run that changes the host, and
interrupted (SIGINT, Ctrl-C) after the first command of each step; then rerun. The host then
equals one where the level was made without interruption, and a third run does nothing.
The harness is the one of test_interruptions.py (tests/support/interrupting.py)."""

from __future__ import annotations

import json
import signal
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.host import RELEASE as R
from tests.support.host import Host
from tests.support.interrupting import command_points, datasets, interrupt, localizer, tree
from tests.support.mirror import Mirror

LEVEL = "p1"
BASE, SKELETON = f"templates/{R}/{LEVEL}-base", f"templates/{R}/{LEVEL}-skeleton"
PATCHED = {"etc/rc": "# /etc/rc p1\n", "usr/share/misc/termcap": "# termcap p1\n"}


def built_with_a_patch_out(host: Host) -> None:
    """pg-1 built on the first level; then FreeBSD publishes p1, which changes a file in
    the skeleton (etc) and one in the base."""
    build = host.doit("run")
    assert build.returncode == 0, build.output
    skeleton, base = host.mountpoint(f"templates/{R}-skeleton"), host.mountpoint(
        f"templates/{R}-base")
    host.publish_patch("p0", files={path: ((skeleton if path.startswith("etc/") else base)
                                           / path).read_text() for path in PATCHED})
    host.publish_patch(LEVEL, files=PATCHED)


def state(host: Host) -> dict[str, Any]:
    """The host's end state, with this host's own names and paths taken out."""
    root_mp, local = str(host.mountpoint()), localizer(host)
    listed = datasets(host, "thinjail:extract,thinjail:tzdns,thinjail:update,"
                            "thinjail:skeleton,thinjail:certs,thinjail:patch,"
                            "thinjail:patched,thinjail:installed,thinjail:created")
    trees = {name: tree(host.mountpoint(name)) for name in (BASE, SKELETON, "containers/pg-1")}
    started = host.state_dir / "started"
    return {"datasets": listed, "trees": trees,
            "fstab": local((host.mountpoint() / "pg-1-nullfs-base.fstab").read_text()),
            "running": host.running(),
            "started": sorted(p.name for p in started.iterdir()),
            "kept": local((started / "pg-1.fstab").read_text()),
            # A skeleton mounted in a base for freebsd-update: taken off again.
            "skeleton mounts": [local(line.split()[1]) for line in
                                Path("/proc/mounts").read_text().splitlines()
                                if line.split()[1].startswith(root_mp)
                                and line.split()[1].endswith("/skeleton")]}


# The host-changing commands of the level's run, in order: a kill point after each. The new
# level: its parent dataset, the first level's base snapshot and clone with three stamps,
# the skeleton's, with two; the mount, the mark, freebsd-update fetch and install, the
# unmount, read-only and the level's stamps; the skeleton snapshot; pg-1's move: the
# snapshot of its dataset before its /etc takes the level's changes, then its restart.
CHANGING_STEPS = ["zfs create", "zfs snapshot", "zfs clone", *["zfs set"] * 3, "zfs snapshot",
                  "zfs clone", *["zfs set"] * 2, "mount", "zfs set", "freebsd-update",
                  "freebsd-update", "umount", *["zfs set"] * 4, "zfs snapshot", "zfs snapshot",
                  "jail"]
# Ctrl-C where a with-block or an error handler runs on the way out: inside the mount
# (freebsd-update), and the move.
INTERRUPTED = ("mount", "freebsd-update", "jail")


def label(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "zfs" else argv[0]


@dataclass(frozen=True)
class Reference:
    state: dict[str, Any]
    changing: list[str]


@pytest.fixture(scope="module")
def reference(pool: str, mirror: Mirror, template_image: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Reference:
    host = Host(pool=pool, root=f"{pool}/levels-{uuid.uuid4().hex[:6]}/reference",
                tmp=tmp_path_factory.mktemp("reference"), mirror_url=mirror.url,
                templates_from=template_image)
    built_with_a_patch_out(host)
    log = host.state_dir / "commands.log"
    done = len(log.read_text().splitlines())
    run = host.doit("run")
    assert run.returncode == 0, run.output
    entries = [json.loads(line) for line in log.read_text().splitlines()[done:]]
    return Reference(state(host), [label(e["argv"]) for e in entries if e["changes"]])


def test_the_kill_points_are_the_reference_runs_commands(reference: Reference) -> None:
    assert reference.changing == CHANGING_STEPS


@pytest.mark.parametrize(("stop_at", "sig"), command_points(CHANGING_STEPS, INTERRUPTED))
def test_an_interrupted_level_converges(host: Host, reference: Reference, stop_at: str,
                                        sig: signal.Signals) -> None:
    built_with_a_patch_out(host)
    where = interrupt(host, stop_at, sig, target="jail")
    assert where.split(" ")[0] == stop_at
    rerun = host.doit("run")
    assert rerun.returncode == 0, f"{where}: {rerun.output}"
    assert "Traceback" not in rerun.output
    assert state(host) == reference.state, f"{where} did not converge"
    again = host.doit("run")
    assert again.ran() == set() and again.changing_commands() == []
