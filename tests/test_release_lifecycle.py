"""Release lifecycle through doit: atomic extract, patch releases, releases side by side."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support import zfspool
from tests.support.host import RELEASE as R
from tests.support.host import Host
from tests.support.jailview import resolve

pytestmark = pytest.mark.builds_templates  # about building them from the mirror

OLDER = "14.4-RELEASE"  # supported, its end of life near
BASE = f"templates/{R}-base"
P3_BASE = f"templates/{R}/p3-base"
BUILD_TASKS = {"host", "fetch", "extract", "tzdns", "update", "skeleton", "certs", "snapshot",
               "clone", "fstab", "conf", "rc", "start"}


def build(host: Host) -> None:
    run = host.doit("run")
    assert run.returncode == 0, run.output


def test_interrupted_extract_is_cleaned_and_redone(host: Host) -> None:
    assert host.doit("run", f"fetch:{R}").returncode == 0
    # What an extract killed half-way leaves: our dataset, some files, no stamp.
    zfspool.run("zfs", "create", "-o", "thinjail:created=extract", host.dataset(BASE))
    (host.mountpoint(BASE) / "half-written").write_text("junk")
    run = host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    assert ["zfs", "destroy", host.dataset(BASE)] in run.changing_commands()
    assert not (host.mountpoint(BASE) / "half-written").exists()
    assert len(host.get(BASE, "thinjail:extract")) == 16
    assert host.running() == {"pg-1"}


def test_a_dataset_thinjail_did_not_create_is_never_destroyed(host: Host) -> None:
    assert host.doit("run", f"fetch:{R}").returncode == 0
    zfspool.run("zfs", "create", host.dataset(BASE))
    (host.mountpoint(BASE) / "someone-elses").write_text("keep me")
    run = host.doit("run", "jail:pg-1")
    assert run.returncode != 0
    assert "exists but thinjail did not create it" in run.output
    assert (host.mountpoint(BASE) / "someone-elses").read_text() == "keep me"
    assert not any(argv[:2] == ["zfs", "destroy"] for argv in run.changing_commands())


def test_a_new_patch_level_is_made_beside_the_base_and_its_jails_move(host: Host) -> None:
    build(host)
    assert host.get(BASE, "thinjail:patch") == "p0"
    clone = host.mountpoint("containers/pg-1")
    (clone / "root/notes.txt").write_text("precious\n")
    guid, origin = host.get("containers/pg-1", "guid"), host.get("containers/pg-1", "origin")
    fstab = host.mountpoint() / "pg-1-nullfs-base.fstab"
    version_p0 = (host.mountpoint(BASE) / "bin/freebsd-version").read_text()

    host.publish_patch("p3")
    # Beforehand, doit shows what will run (the new level, the jail's move), and why.
    status = dict(line.split()[1::-1] for line in
                  host.report("list", "--all", "--status").stdout.splitlines())
    steps = {task for task in status if task.split(":")[0] in BUILD_TASKS and ":" in task}
    assert {task for task in steps if status[task] == "R"} == {
        f"update:{R}", f"snapshot:{R}", "fstab:pg-1", "start:pg-1"}
    assert len(steps) == 15  # 7 release, 5 jail, 3 host steps
    info = host.report("info", f"update:{R}").stdout
    assert "base at p0, available p3" in info and f"make {R} p3 beside" in info
    assert host.dataset(P3_BASE) in host.report("info", "fstab:pg-1").stdout

    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert run.ran() == {f"update:{R}", f"snapshot:{R}", "fstab:pg-1", "start:pg-1"}
    # The base jails had mounted is unchanged: no command wrote to it; the new level is
    # a read-only clone, patched with its skeleton mounted.
    assert host.get(BASE, "thinjail:patch") == "p0"
    assert (host.mountpoint(BASE) / "bin/freebsd-version").read_text() == version_p0
    assert not [argv for argv in run.changing_commands()
                if argv[:2] in (["zfs", "set"], ["zfs", "inherit"]) and
                argv[-1] == host.dataset(BASE)]
    assert host.get(P3_BASE, "origin") == host.dataset(f"{BASE}@level-p3")
    with pytest.raises(OSError, match="Read-only file system"):  # readonly=on
        (host.mountpoint(P3_BASE) / "written-later").write_text("no")
    assert host.get(P3_BASE, "thinjail:patch") == "p3"
    assert f'USERLAND_VERSION="{R}-p3"' in \
        (host.mountpoint(P3_BASE) / "bin/freebsd-version").read_text()
    installs = [argv for argv in run.changing_commands() if argv[0] == "freebsd-update"]
    assert [argv[2] for argv in installs] == [str(host.mountpoint(P3_BASE))] * 2
    names = [argv[0] for argv in run.changing_commands()]
    assert names.index("mount") < names.index("freebsd-update") < names.index("umount")
    # pg-1 moved: its fstab mounts the new base, and it was restarted on it.
    assert fstab.read_text().splitlines()[1].split()[0] == str(host.mountpoint(P3_BASE))
    assert [argv[-2:] for argv in run.changing_commands() if argv[0] == "jail"] == \
        [["-rc", "pg-1"]]
    assert host.get("containers/pg-1", "guid") == guid
    assert host.get("containers/pg-1", "origin") == origin
    assert (clone / "root/notes.txt").read_text() == "precious\n"

    after = host.doit("run")
    assert after.returncode == 0 and after.ran() == set()
    assert after.changing_commands() == []


def is_mount_point(path: Path) -> bool:
    return path.stat().st_dev != path.parent.stat().st_dev


def test_a_patch_reaches_etc_in_the_new_skeleton_and_new_jails(host: Host) -> None:
    """freebsd-update skips a path that does not resolve on the host, and after the split
    the base's etc is a link into its empty `skeleton/`: the new level's skeleton is
    mounted there while freebsd-update runs. Jails created from then on clone it; existing
    jails keep their own datasets. An attempt cut off half-way is cleaned up and redone."""
    build(host)
    skeleton = host.mountpoint(f"templates/{R}-skeleton")
    pg1 = host.mountpoint("containers/pg-1")
    patched = {"etc/rc": "# /etc/rc p1\n", "etc/ssl/cert.pem": "bundle p1\n",
               "etc/rc.shutdown": "# /etc/rc.shutdown p1\n"}
    host.publish_patch("p0", files={path: (skeleton / path).read_text() for path in patched})
    (pg1 / "etc/rc.shutdown").write_text("pg-1's own\n")
    origin = host.get("containers/pg-1", "origin")
    host.publish_patch("p1", files=patched)
    # What a run killed while freebsd-update ran leaves: the new level's datasets, not
    # done, with the new skeleton mounted in the new base.
    new_base, new_skeleton = f"templates/{R}/p1-base", f"templates/{R}/p1-skeleton"
    zfspool.run("zfs", "snapshot", host.dataset(f"{BASE}@level-p1"))
    zfspool.run("zfs", "snapshot", host.dataset(f"templates/{R}-skeleton@level-p1"))
    zfspool.run("zfs", "create", host.dataset(f"templates/{R}"))
    for name, source in ((new_base, f"{BASE}@level-p1"),
                         (new_skeleton, f"templates/{R}-skeleton@level-p1")):
        zfspool.run("zfs", "clone", "-o", "thinjail:created=update", host.dataset(source),
                    host.dataset(name))
    mount_point = host.mountpoint(new_base) / "skeleton"
    zfspool.run("mount", "--bind", str(host.mountpoint(new_skeleton)), str(mount_point))
    host.jails["web"] = {"id": 112}

    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert not is_mount_point(mount_point)
    assert ["zfs", "destroy", "-r", host.dataset(new_base)] in run.changing_commands()
    for path, text in patched.items():
        assert (host.mountpoint(new_skeleton) / path).read_text() == text
        assert (host.mountpoint("containers/web") / path).read_text() == text
        assert (skeleton / path).read_text() != text  # the first level is as it was
    web_origin = host.get("containers/web", "origin")
    assert web_origin.startswith(host.dataset(f"{new_skeleton}@base-"))
    assert host.get("containers/pg-1", "origin") == origin
    assert (pg1 / "etc/rc.shutdown").read_text() == "pg-1's own\n"
    assert host.running() == {"pg-1", "web"}
    assert host.doit("run").ran() == set()


def test_a_new_level_s_etc_changes_are_merged_into_each_jail(host: Host) -> None:
    """As etcupdate does: the old level's skeleton is the ancestor, the new one's the target,
    the jail's file the local copy. A file the jail left is replaced, one it changed
    elsewhere is merged, one it changed on the same line is kept and reported."""
    build(host)
    skeleton = host.mountpoint(f"templates/{R}-skeleton")
    pg1 = host.mountpoint("containers/pg-1")
    login = (skeleton / "etc/login.conf").read_text()
    patched = {"etc/rc": "# /etc/rc p1\n",
               "etc/login.conf": login.replace("\t:ignorenologin:\\\n",
                                               "\t:ignorenologin:\\\n\t:priority=0:\\\n"),
               "etc/group": "wheel:*:0:root,toor\n"}
    host.publish_patch("p0", files={path: (skeleton / path).read_text() for path in patched})
    host.publish_patch("p1", files=patched)
    (pg1 / "etc/login.conf").write_text(login.replace(":umask=022:", ":umask=027:"))
    (pg1 / "etc/group").write_text("wheel:*:0:root,admin\n")

    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert (pg1 / "etc/rc").read_text() == "# /etc/rc p1\n"
    merged = (pg1 / "etc/login.conf").read_text()
    assert ":umask=027:" in merged and ":priority=0:" in merged
    assert (pg1 / "etc/group").read_text() == "wheel:*:0:root,admin\n"
    assert "/etc/group was changed in the jail and by p1; the jail's version is kept" in \
        run.output
    assert host.dataset("containers/pg-1@pre-p1") in host.names()  # the way back
    assert host.doit("run").ran() == set()


def test_a_jail_that_does_not_start_on_the_new_level_goes_back_and_the_rollout_stops(
        host: Host) -> None:
    """rollout: one-at-a-time (the default): a jail that does not come back on the new
    level is put back on its old one and started, the run stops naming it, and the jails
    after it have not moved. The next run tries again."""
    host.jails["web"] = {"id": 112}
    build(host)
    sh = (host.mountpoint(BASE) / "bin/sh").read_text()
    rc = (host.mountpoint(f"templates/{R}-skeleton") / "etc/rc").read_text()
    host.publish_patch("p0", files={"bin/sh": sh, "etc/rc": rc})
    # Not a program (ENOEXEC); and an /etc change, which the move merges into pg-1.
    host.publish_patch("p1", files={"bin/sh": "a broken shell\n", "etc/rc": "# rc p1\n"})
    fstabs = {name: host.mountpoint() / f"{name}-nullfs-base.fstab" for name in host.jails}
    before = {name: fstab.read_text() for name, fstab in fstabs.items()}
    pg1_rc = host.mountpoint("containers/pg-1") / "etc/rc"

    for _ in range(2):  # the second run tries again, the same way
        run = host.doit("run")
        assert run.returncode != 0
        assert "start: pg-1 did not start on its new base" in run.output
        assert "exec /bin/sh: Exec format error" in \
            (host.fake_state / "console-pg-1.log").read_text()  # exec.consolelog
        assert "back on the base it ran on, and runs" in run.output
        assert [c["argv"][3:] for c in run.calls if c["tool"] == "jail"] == [
            ["-rc", "pg-1"], ["-c", "pg-1"]]  # web was not touched
        assert host.running() == {"pg-1", "web"}
        assert {name: fstab.read_text() for name, fstab in fstabs.items()} == before
        assert pg1_rc.read_text() == rc  # its /etc as it was on the old level

    # web's move waits for pg-1's (one-at-a-time); with `rollout: parallel` it does not.
    assert " - start:pg-1" in host.report("info", "fstab:web").stdout
    host.overrides["rollout"] = "parallel"
    host.write_config()
    assert " - start:pg-1" not in host.report("info", "fstab:web").stdout
    del host.overrides["rollout"]

    host.publish_patch("p2", files={"bin/sh": sh})  # the fix: both move, one after the other
    fixed = host.doit("run")
    assert fixed.returncode == 0, fixed.output
    assert [c["argv"][3:] for c in fixed.calls if c["tool"] == "jail"] == [
        ["-rc", "pg-1"], ["-rc", "web"]]
    new_base = str(host.mountpoint(f"templates/{R}/p2-base"))
    for fstab in fstabs.values():
        assert fstab.read_text().splitlines()[1].split()[0] == new_base
    assert pg1_rc.read_text() == "# rc p1\n"
    assert host.running() == {"pg-1", "web"}
    assert host.doit("run").ran() == set()


def test_the_latest_patch_level_is_asked_once_per_update_check(host: Host) -> None:
    host.overrides["update_check"] = 3600
    build(host)
    asked = {"freebsd-update"}
    host.publish_patch("p3")
    # Within the hour the recorded answer (p0, from the first run's install) stands.
    quiet = host.doit("run")
    assert quiet.returncode == 0 and quiet.ran() == set()
    assert not asked & {c["argv"][0] for c in quiet.commands}
    assert json.loads((host.state_dir / "patch-offers.json").read_text())[R]["level"] == "p0"

    forced = host.doit("run", "check_updates=1")
    assert forced.ran() == {f"update:{R}", f"snapshot:{R}", "fstab:pg-1", "start:pg-1"}, \
        forced.output
    assert host.get(P3_BASE, "thinjail:patch") == "p3"
    after = host.doit("run")
    assert after.ran() == set() and not asked & {c["argv"][0] for c in after.commands}

    # Once the answer is older than update_check, the next run asks again by itself.
    host.publish_patch("p4")
    offers = host.state_dir / "patch-offers.json"
    record = json.loads(offers.read_text())
    record[R]["asked"] -= 3601  # recorded over an hour ago
    offers.write_text(json.dumps(record))
    late = host.doit("run")
    assert late.ran() == {f"update:{R}", f"snapshot:{R}", "fstab:pg-1", "start:pg-1"}, \
        late.output
    assert host.get(f"templates/{R}/p4-base", "origin") == host.dataset(f"{P3_BASE}@level-p4")


def test_patch_pin(host: Host) -> None:
    host.publish_patch("p3")
    host.overrides["patch"] = "p3"
    build(host)
    assert host.get(BASE, "thinjail:patch") == "p3"
    assert host.doit("run").ran() == set()
    # A pin freebsd-update cannot reach fails clearly, and records nothing.
    host.overrides["patch"] = "p2"
    run = host.doit("run")
    assert run.returncode != 0
    assert "brings 15.1-RELEASE to p3, but the config pins p2" in run.output
    assert "nothing was installed" in run.output


def test_releases_side_by_side(host: Host) -> None:
    host.overrides["release"] = OLDER
    build(host)
    notes = host.mountpoint("containers/pg-1") / "root/notes.txt"
    notes.write_text("precious\n")
    guid, origin = host.get("containers/pg-1", "guid"), host.get("containers/pg-1", "origin")
    fstab = host.mountpoint() / "pg-1-nullfs-base.fstab"
    before = fstab.read_text()

    # A new global release: new templates for new jails; pg-1 keeps its release.
    host.overrides["release"] = R
    host.jails["dev"] = {"id": 112}
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert host.exists(f"templates/{R}-base") and host.exists(f"templates/{OLDER}-base")
    assert host.get("containers/dev", "origin").startswith(
        host.dataset(f"templates/{R}-skeleton@"))
    assert fstab.read_text() == before
    assert "start:pg-1" not in run.ran() and "start:dev" in run.ran()
    dev_base = (host.mountpoint() / "dev-nullfs-base.fstab").read_text().split()
    assert str(host.mountpoint(f"templates/{R}-base")) in dev_base

    # Moving pg-1 is explicit: pin it. Its base changes, its dataset and origin do not.
    host.jails["pg-1"] = {"id": 111, "release": R}
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert run.ran() == {"fstab:pg-1", "start:pg-1"}
    assert str(host.mountpoint(f"templates/{R}-base")) in fstab.read_text().split()
    assert host.get("containers/pg-1", "guid") == guid
    assert host.get("containers/pg-1", "origin") == origin
    assert notes.read_text() == "precious\n"
    assert host.doit("run").ran() == set()


@pytest.mark.parametrize("release", [OLDER, R])
def test_a_new_level_s_certificates_reach_each_moved_jail(host: Host, release: str) -> None:
    """A patch that adds a trusted certificate to the base and changes etc/rc: after its
    move each jail's own trust store is rebuilt inside it (certctl rehash, by the jail's
    own FreeBSD: links on 14.x, files and a bundle on 15.x)."""
    host.overrides["release"] = release
    build(host)
    skeleton = host.mountpoint(f"templates/{release}-skeleton")
    host.publish_patch("p0", files={"etc/rc": (skeleton / "etc/rc").read_text()})
    new_cert = "-----BEGIN CERTIFICATE----- New_Root\n"
    host.publish_patch("p1", files={"etc/rc": "# rc p1\n",
                                    "usr/share/certs/trusted/New_Root.pem": new_cert})
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert [c["argv"] for c in run.calls if c["tool"] == "jexec"] == [
        ["jexec", "pg-1", "/usr/sbin/certctl", "rehash"]]
    base = host.mountpoint(f"templates/{release}/p1-base")
    clone = host.mountpoint("containers/pg-1")
    assert (clone / "etc/rc").read_text() == "# rc p1\n"
    hashed = hashlib.sha1(new_cert.encode()).hexdigest()[:8] + ".0"
    jail_path, host_file = resolve(base, clone, f"/etc/ssl/certs/{hashed}")
    assert host_file.read_text() == new_cert
    if release == OLDER:  # a link into the base, as the jail sees it
        assert jail_path == "/usr/share/certs/trusted/New_Root.pem"
    else:  # a file of the jail's own, and the bundle has it
        assert jail_path == f"/skeleton/etc/ssl/certs/{hashed}"
        assert new_cert in (clone / "etc/ssl/cert.pem").read_text()
    assert host.doit("run").ran() == set()


def test_a_failed_move_in_a_parallel_rollout_leaves_no_jail_half_moved(host: Host) -> None:
    """rollout: parallel with `doit -n 2`: both jails move at once and neither starts on the
    broken level. Each one whose start ran is back on its old level, running, its /etc as
    before; one whose start doit did not reach after the failure still runs on its old
    level with its /etc untouched (the merge is part of the step that restarts)."""
    host.jails["web"] = {"id": 112}
    host.overrides["rollout"] = "parallel"
    build(host)
    base = host.mountpoint(f"templates/{R}-base")
    skeleton = host.mountpoint(f"templates/{R}-skeleton")
    rc = (skeleton / "etc/rc").read_text()
    host.publish_patch("p0", files={"bin/sh": (base / "bin/sh").read_text(), "etc/rc": rc})
    host.publish_patch("p1", files={"bin/sh": "a broken shell\n", "etc/rc": "# rc p1\n"})
    kept = {name: (host.state_dir / f"started/{name}.fstab").read_text() for name in host.jails}

    run = host.doit("run", "-n", "2")
    assert run.returncode != 0
    assert "did not start on its new base" in run.output
    assert host.running() == {"pg-1", "web"}
    for name in host.jails:
        assert (host.state_dir / f"started/{name}.fstab").read_text() == kept[name]
        assert (host.mountpoint(f"containers/{name}") / "etc/rc").read_text() == rc
    tried = {c["argv"][-1] for c in run.calls if c["tool"] == "jail" and "-rc" in c["argv"]}
    assert tried and tried <= {"pg-1", "web"}
    for name in tried:  # put back, and held back until the next run
        assert (host.state_dir / f"started/{name}.held").exists()
        fstab = (host.mountpoint() / f"{name}-nullfs-base.fstab").read_text()
        assert fstab == kept[name]
