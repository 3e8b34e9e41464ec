"""Interruption of a run that makes a new patch level and moves its jail there: the doit
process is killed (SIGKILL) right after each command of that run that changes the host, and
interrupted (SIGINT, Ctrl-C) after the first command of each step; then rerun. The host then
equals one where the level was made without interruption, and a third run does nothing.
Likewise for a move that fails and puts the jail back on its old level (the put-back path):
after the rerun the host equals one where that happened without interruption, and each later
run tries again the same way. The harness is the one of test_interruptions.py
(tests/support/interrupting.py)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.host import RELEASE as R
from tests.support.host import Host, Run
from tests.support.interrupting import command_points, datasets, interrupt, localizer, tree
from tests.support.mirror import Mirror

LEVEL = "p1"
BASE, SKELETON = f"templates/{R}/{LEVEL}-base", f"templates/{R}/{LEVEL}-skeleton"
PATCHED = {"etc/rc": "# /etc/rc p1\n", "usr/share/misc/termcap": "# termcap p1\n"}
BACK = "start: pg-1 did not start on its new base"


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


def built_with_a_broken_patch_out(host: Host) -> None:
    """As built_with_a_patch_out, but p1's /bin/sh is no program: pg-1 does not start on it
    and is put back."""
    build = host.doit("run")
    assert build.returncode == 0, build.output
    skeleton, base = host.mountpoint(f"templates/{R}-skeleton"), host.mountpoint(
        f"templates/{R}-base")
    host.publish_patch("p0", files={"bin/sh": (base / "bin/sh").read_text(),
                                    "etc/rc": (skeleton / "etc/rc").read_text()})
    host.publish_patch(LEVEL, files={"bin/sh": "a broken shell\n", "etc/rc": "# rc p1\n"})


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
LEVEL_STEPS = ["zfs create", "zfs snapshot", "zfs clone", *["zfs set"] * 3, "zfs snapshot",
               "zfs clone", *["zfs set"] * 2, "mount", "zfs set", "freebsd-update",
               "freebsd-update", "umount", *["zfs set"] * 4, "zfs snapshot"]
# ... then the move: its snapshot and the level it left, the restart, the trust store rebuilt
# in the jail.
CHANGING_STEPS = [*LEVEL_STEPS, "zfs snapshot", "zfs set", "jail", "jexec"]
# A move that fails: its snapshot, the restart that fails, the epair that left removed, the
# start on the old level.
PUT_BACK_STEPS = [*LEVEL_STEPS, "zfs snapshot", "zfs set", "jail", "ifconfig", "jail"]
# Ctrl-C where a with-block or an error handler runs on the way out: inside the mount
# (freebsd-update), and the move.
INTERRUPTED = ("mount", "freebsd-update", "jail", "ifconfig", "jexec")


def label(argv: list[str]) -> str:
    return " ".join(argv[:2]) if argv[0] == "zfs" else argv[0]


@dataclass(frozen=True)
class Reference:
    state: dict[str, Any]
    changing: list[str]


def reference_run(pool: str, mirror: Mirror, template_image: Path, tmp: Path,
                  prepare: Callable[[Host], None]) -> tuple[Host, Run]:
    host = Host(pool=pool, root=f"{pool}/levels-{uuid.uuid4().hex[:6]}/reference", tmp=tmp,
                mirror_url=mirror.url, templates_from=template_image)
    prepare(host)
    return host, host.doit("run")


def changing(run: Run) -> list[str]:
    return [label(c["argv"]) for c in run.commands if c["changes"]]


@pytest.fixture(scope="module")
def reference(pool: str, mirror: Mirror, template_image: Path,
              tmp_path_factory: pytest.TempPathFactory) -> Reference:
    host, run = reference_run(pool, mirror, template_image, tmp_path_factory.mktemp("ref"),
                              built_with_a_patch_out)
    assert run.returncode == 0, run.output
    return Reference(state(host), changing(run))


@pytest.fixture(scope="module")
def put_back(pool: str, mirror: Mirror, template_image: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Reference:
    host, run = reference_run(pool, mirror, template_image, tmp_path_factory.mktemp("back"),
                              built_with_a_broken_patch_out)
    assert run.returncode != 0 and BACK in run.output, run.output
    return Reference(state(host), changing(run))


def test_the_kill_points_are_the_reference_runs_commands(reference: Reference,
                                                         put_back: Reference) -> None:
    assert reference.changing == CHANGING_STEPS
    assert put_back.changing == PUT_BACK_STEPS


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


# The level's own commands are covered above: here, from the move on.
@pytest.mark.parametrize(("stop_at", "sig"), [
    case for case in command_points(PUT_BACK_STEPS, INTERRUPTED)
    if int(case.values[0].split(":")[1]) > len(LEVEL_STEPS)])
def test_an_interrupted_put_back_converges(host: Host, put_back: Reference, stop_at: str,
                                           sig: signal.Signals) -> None:
    built_with_a_broken_patch_out(host)
    where = interrupt(host, stop_at, sig, target="jail")
    assert where.split(" ")[0] == stop_at
    for _ in range(2):  # the rerun converges; every later run tries again the same way
        rerun = host.doit("run")
        assert rerun.returncode != 0 and BACK in rerun.output, f"{where}: {rerun.output}"
        assert "Traceback" not in rerun.output
        assert state(host) == put_back.state, f"{where} did not converge"
    assert [label(argv) for argv in rerun.changing_commands()] == ["jail", "ifconfig", "jail"]
