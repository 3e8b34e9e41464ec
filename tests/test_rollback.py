"""Going back a patch level: a jail's `patch:` pin, `doit rollback:<jail>`, and what is kept."""

from __future__ import annotations

import pytest

from tests.support.host import RELEASE as R
from tests.support.host import Host

pytestmark = pytest.mark.builds_templates

BASE = f"templates/{R}-base"
P1_BASE = f"templates/{R}/p1-base"
RC_P1 = "# /etc/rc p1\n"
STEPS = {"fetch", "extract", "tzdns", "update", "skeleton", "certs", "snapshot", "clone",
         "fstab", "conf", "rc", "start", "provision"}  # what a run does (not stop:, destroy:)


def first_mount(host: Host, name: str) -> str:
    """The base a jail's fstab mounts at its root."""
    lines = (host.mountpoint() / f"{name}-nullfs-base.fstab").read_text().splitlines()
    return next(line.split()[0] for line in lines if line.strip() and not line.startswith("#"))


def on_p1(host: Host) -> str:
    """Build with pg-1 and web, then publish p1 (a new etc/rc) and move both jails to it;
    return the release's own etc/rc."""
    host.jails["web"] = {"id": 112}
    build = host.doit("run")
    assert build.returncode == 0, build.output
    rc_p0 = (host.mountpoint(f"templates/{R}-skeleton") / "etc/rc").read_text()
    host.publish_patch("p0", files={"etc/rc": rc_p0})
    host.publish_patch("p1", files={"etc/rc": RC_P1})
    moved = host.doit("run")
    assert moved.returncode == 0, moved.output
    assert {first_mount(host, name) for name in host.jails} == {str(host.mountpoint(P1_BASE))}
    return rc_p0


def test_a_pin_moves_a_jail_back_and_merges_its_etc(host: Host) -> None:
    rc_p0 = on_p1(host)
    pg1 = host.mountpoint("containers/pg-1")
    assert (pg1 / "etc/rc").read_text() == RC_P1
    (pg1 / "etc/motd.template").write_text("pg-1's own motd\n")
    guid, origin = host.get("containers/pg-1", "guid"), host.get("containers/pg-1", "origin")

    host.jails["pg-1"]["patch"] = "p0"
    host.write_config()
    status = dict(line.split()[1::-1] for line in
                  host.report("list", "--all", "--status").stdout.splitlines())
    stale = {task for task, state in status.items()
             if state == "R" and ":" in task and task.split(":")[0] in STEPS}
    assert stale == {"fstab:pg-1", "start:pg-1"}
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert run.ran() == {"fstab:pg-1", "start:pg-1"}
    assert first_mount(host, "pg-1") == str(host.mountpoint(BASE))
    assert first_mount(host, "web") == str(host.mountpoint(P1_BASE))
    assert (pg1 / "etc/rc").read_text() == rc_p0  # the patch's change taken back out
    assert (pg1 / "etc/motd.template").read_text() == "pg-1's own motd\n"  # its own kept
    assert host.exists("containers/pg-1@pre-p0") and host.exists("containers/pg-1@pre-p1")
    assert host.get("containers/pg-1", "guid") == guid
    assert host.get("containers/pg-1", "origin") == origin
    assert host.running() == {"pg-1", "web"}
    assert host.doit("run").ran() == set()

    # Unpinned, it moves to p1 again; that move's snapshot does not reuse the first's name.
    del host.jails["pg-1"]["patch"]
    again = host.doit("run")
    assert again.returncode == 0, again.output
    assert first_mount(host, "pg-1") == str(host.mountpoint(P1_BASE))
    assert host.exists("containers/pg-1@pre-p1.2")


def test_rollback_restores_the_level_and_etc(host: Host) -> None:
    rc_p0 = on_p1(host)
    pg1 = host.mountpoint("containers/pg-1")
    # Changed on p1, after the move: /etc goes back to what it was before it.
    (pg1 / "etc/rc").write_text("# edited on p1\n")
    (pg1 / "etc/new-on-p1.conf").write_text("made on p1\n")
    (pg1 / "etc/ssl/local.pem").symlink_to("/etc/hosts")
    (pg1 / "root/data.txt").write_text("not /etc: kept\n")

    # Not pinned: nothing to roll back to, said before any command runs.
    refused = host.doit("run", "rollback:pg-1")
    assert refused.returncode != 0
    assert "rollback:pg-1: pg-1 does not move: pin the level to go back to" in refused.output
    assert refused.changing_commands() == []
    # A pin to a level this host has no base for, likewise.
    host.jails["pg-1"]["patch"] = "p7"
    unknown = host.doit("run")
    assert unknown.returncode != 0 and unknown.changing_commands() == []
    assert "jails.pg-1.patch: 15.1-RELEASE has no base at p7 on this host (it has: p0, p1)" \
        in unknown.output

    host.jails["pg-1"]["patch"] = "p0"
    run = host.doit("run", "rollback:pg-1")
    assert run.returncode == 0, run.output
    assert run.ran() == {"fstab:pg-1", "start:pg-1"}
    assert first_mount(host, "pg-1") == str(host.mountpoint(BASE))
    assert (pg1 / "etc/rc").read_text() == rc_p0
    assert not (pg1 / "etc/new-on-p1.conf").exists()
    assert not (pg1 / "etc/ssl/local.pem").is_symlink()
    assert (pg1 / "root/data.txt").read_text() == "not /etc: kept\n"
    assert f"/etc restored from {host.dataset('containers/pg-1@pre-p1')}" in run.output
    # What it had on p1 is in the snapshot taken before the rollback; the scratch clone
    # that /etc was read from is gone.
    assert host.exists("containers/pg-1@pre-p0")
    assert not [name for name in host.names() if "rollback-" in name]
    assert first_mount(host, "web") == str(host.mountpoint(P1_BASE))
    assert host.running() == {"pg-1", "web"}
    assert host.doit("run").ran() == set()


def test_a_new_jail_pinned_to_an_older_level_is_cloned_from_it(host: Host) -> None:
    on_p1(host)
    host.jails["old"] = {"id": 113, "patch": "p0"}
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert host.get("containers/old", "origin").startswith(
        host.dataset(f"templates/{R}-skeleton@base-"))
    assert first_mount(host, "old") == str(host.mountpoint(BASE))
    assert (host.mountpoint("containers/old") / "etc/rc").read_text() != RC_P1
    assert host.running() == {"pg-1", "web", "old"}
    assert host.doit("run").ran() == set()


def test_purge_keeps_the_levels_in_use_and_the_newest(host: Host) -> None:
    """keep_levels (default 2) newest levels stay, and every level a jail mounts or pins;
    `doit purge` removes the rest. A later level cloned from a purged one is promoted
    first, and jails cloned from its skeleton keep their datasets."""
    on_p1(host)
    for level in ("p2", "p3"):
        host.publish_patch(level, files={"etc/rc": f"# /etc/rc {level}\n"})
        assert host.doit("run").returncode == 0
    host.jails["web"]["patch"] = "p1"
    assert host.doit("run").returncode == 0
    guid = host.get("containers/pg-1", "guid")
    notes = host.mountpoint("containers/pg-1") / "root/notes.txt"
    notes.write_text("precious\n")
    first = [f"templates/{R}-base", f"templates/{R}-skeleton"]
    info = host.report("info", "purge").stdout  # what it will remove, beforehand
    assert f"destroy {host.dataset(first[0])} and -skeleton" in info, info

    run = host.doit("run", "purge")
    assert run.returncode == 0, run.output
    assert not any(host.exists(name) for name in first)  # p0: unused, not among the newest
    for level in ("p1", "p2", "p3"):  # pinned by web; the two newest
        assert host.exists(f"templates/{R}/{level}-base")
    assert not [argv for argv in run.changing_commands()
                if argv[:2] == ["zfs", "destroy"] and "/containers/" in argv[-1]]
    assert host.get("containers/pg-1", "guid") == guid
    assert host.get("containers/pg-1", "origin").startswith(
        host.dataset(f"templates/{R}/p1-skeleton@base-"))  # promoted with p1
    assert notes.read_text() == "precious\n"
    assert host.running() == {"pg-1", "web"}
    assert host.doit("run").ran() == set()

    del host.jails["web"]["patch"]  # web moves to p3; p1 is then unused
    assert host.doit("run").returncode == 0
    assert host.doit("run", "purge").returncode == 0
    assert not host.exists(f"templates/{R}/p1-base")
    assert host.exists(f"templates/{R}/p2-base") and host.exists(f"templates/{R}/p3-base")
    host.jails["new"] = {"id": 113}
    after = host.doit("run")
    assert after.returncode == 0, after.output
    assert after.ran() == {"clone:new", "fstab:new", "conf:new", "rc:new", "start:new"}
    assert host.running() == {"pg-1", "web", "new"}
    assert host.doit("run").ran() == set()
