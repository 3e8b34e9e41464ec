"""What a crash, a damaged state file, a busy dataset or a failing system call leaves: never a
traceback, never a wrong "up to date", a destroy that goes through."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
import time
from pathlib import Path

import pytest

from tasks.errors import ThinjailError
from tasks.host_state import Offer, OfferRecord
from tasks.runner import Runner
from tasks.steps.running import wait_until_gone
from tests.support import zfspool
from tests.support.host import FAKES, Host

DAMAGE = {
    # What doit's JSON backend left when killed while saving: the file cut short.
    "JSON cut short": b'{"jail:pg-1": {"_values_:": {}}, "start:pg-1": {"thinjail',
    "zeros": bytes(4096),
    "SQLite cut short": None,  # the real file, truncated mid-page
}


def damage(state: Path, how: str) -> None:
    data = DAMAGE[how]
    if data is None:
        data = state.read_bytes()[:1500]
    state.write_bytes(data)


def rendered(host: Host) -> dict[str, str]:
    files = [*host.etc.rglob("*.conf"), *host.mountpoint().glob("*.fstab")]
    return {str(path): path.read_text() for path in files}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_an_unreadable_state_file_is_set_aside_and_checks_run_live(host: Host,
                                                                   how: str) -> None:
    assert host.doit("run", "jail:pg-1").returncode == 0
    state = host.state_dir / "doit.db"
    before = rendered(host)
    damage(state, how)

    # Reports and dry-runs read it, say so, and leave it for the next run.
    for args in (("list", "--all", "--status"), ("run", "jail:pg-1", "dry_run=1")):
        report = host.report(*args)
        assert report.returncode == 0, report.stderr
        assert f"doit's state {state} is unreadable" in report.stderr
        assert "Traceback" not in report.stderr
    assert not list(host.state_dir.glob("doit.db.unreadable-*"))

    rerun = host.doit("run", "jail:pg-1")
    assert rerun.returncode == 0, rerun.output
    aside = list(host.state_dir.glob("doit.db.unreadable-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == DAMAGE[how] if DAMAGE[how] else aside[0].stat().st_size == 1500
    warnings = [line for line in rerun.output.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"thinjail: warning: doit's state {state} was unreadable (")
    assert warnings[0].endswith(f"); set aside as {aside[0].name}: this run checks every step "
                                "on the host")
    # The live checks found every step current: only the rendered files were written again,
    # the same bytes, and no command changed the host; a change is still noticed.
    assert rerun.ran() <= {"jail_conf", "conf:pg-1", "fstab:pg-1"}
    assert rerun.changing_commands() == []
    assert rendered(host) == before
    with sqlite3.connect(state) as db:
        assert db.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    host.overrides["timezone"] = "UTC"
    changed = host.doit("run", "jail:pg-1")
    assert changed.returncode == 0 and "tzdns:15.1-RELEASE" in changed.ran()
    assert "warning" not in changed.output


def test_destroy_right_after_a_write_waits_for_the_dying_jail(host: Host) -> None:
    assert host.doit("run", "jail:pg-1").returncode == 0
    (host.fake_state / "dying-seconds").write_text("1.5")
    (host.mountpoint("containers/pg-1") / "root/notes.txt").write_text("keep\n")

    run = host.doit("run", "destroy:pg-1")

    assert run.returncode == 0, run.output
    trash = [n for n in host.names() if n.startswith(host.dataset("trash/pg-1-"))]
    assert len(trash) == 1 and not host.exists("containers/pg-1")
    assert Path(zfspool.zfs_get(trash[0], "mountpoint"), "root/notes.txt").read_text() == "keep\n"
    # jls -d was asked until the jail was gone, and only then the dataset renamed.
    asked = [c for c in run.commands if c["argv"][:2] == ["jls", "-d"]]
    assert [c["rc"] for c in asked][-1] == 1 and 0 in [c["rc"] for c in asked]
    removed = next(c for c in run.commands if c["argv"][:2] == ["jail", "-f"])
    renamed = next(c for c in run.commands if c["argv"][:2] == ["zfs", "rename"])
    assert renamed["time"] - renamed["seconds"] >= removed["time"] + 1.5
    # Unmounted for the rename (zfs-fuse may still answer "busy" and remount: then the retry
    # unmounts again), and mounted again under its new name.
    zfs = [c["argv"][1] for c in run.commands if c["argv"][0] == "zfs" and c["changes"]]
    assert zfs[zfs.index("rename") - 1] == "umount" and zfs[-1] == "mount", zfs


def test_a_jail_that_stays_dying_stops_the_wait(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("THINJAIL_FAKE_STATE", str(tmp_path))
    (tmp_path / "dying").mkdir()
    (tmp_path / "dying/pg-1").write_text(str(time.time() + 3600))
    with pytest.raises(ThinjailError, match=r"destroy: jail pg-1 is stopped but still dying "
                                            r"after 1 s .* rerun `doit destroy:pg-1` later"):
        wait_until_gone(Runner(), "pg-1", "destroy", timeout=1)
    (tmp_path / "dying/pg-1").write_text(str(time.time() - 1))
    wait_until_gone(Runner(), "pg-1", "destroy", timeout=1)  # gone: returns at once


def test_a_failing_system_call_is_one_line_naming_the_path(host: Host) -> None:
    conf_d = host.tmp / "not-a-directory"
    conf_d.write_text("")
    host.overrides["paths"] = {**host.config()["paths"], "jail_conf_d": str(conf_d)}
    run = host.doit("run", "jail:pg-1")
    assert run.returncode != 0
    assert "Traceback" not in run.output
    lines = [line for line in run.output.splitlines() if str(conf_d) in line]
    assert lines == [f"could not write {conf_d}/pg-1.conf: {conf_d}: File exists"], run.output
    assert run.results["conf:pg-1"] == "fail"


def _record_many(path: Path, release: str) -> None:
    offers = OfferRecord(path, max_age=3600)
    for level in range(100):
        offers.record(release, Offer(f"p{level}"))


def test_parallel_workers_never_lose_a_patch_offer(tmp_path: Path) -> None:
    """`doit -n` workers update releases in the one record at once: read, change and write
    happen under its lock, each write through a temporary file of its own."""
    path = tmp_path / "patch-offers.json"
    releases = ("14.4-RELEASE", "15.1-RELEASE", "15.0-RELEASE")
    workers = [multiprocessing.Process(target=_record_many, args=(path, release))
               for release in releases]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0, 0, 0]
    recorded = json.loads(path.read_text())
    assert {release: entry["level"] for release, entry in recorded.items()} == dict.fromkeys(
        releases, "p99")


def test_datasets_a_killed_create_or_clone_left_unmounted_are_mounted(host: Host) -> None:
    """`zfs create` and `zfs clone` make the dataset, then mount it: killed in between (an
    async time limit, `kill -9`), they leave it unmounted. The rerun's host:datasets mounts
    thinjail's own and the run goes on; it creates nothing again."""
    media, dev = host.dataset("media"), host.dataset("containers/dev")
    assert host.doit("run", "host:datasets").returncode == 0
    zfspool.run("zfs", "umount", media, retry_busy=True)  # the first build's create, killed
    first = host.doit("run", "jail:pg-1")
    assert first.returncode == 0, first.output
    zfs = [argv for argv in first.changing_commands() if argv[0] == "zfs"]
    assert zfs[0] == ["zfs", "mount", media] and ["zfs", "create", media] not in [
        [a for a in argv if not a.startswith("-") and "=" not in a] for argv in zfs]
    assert host.get("media", "mounted") == "yes" and host.running() == {"pg-1"}

    host.jails["dev"] = {"id": 112}
    assert host.doit("run", "clone:dev").returncode == 0
    origin = host.get("containers/dev", "origin")
    zfspool.run("zfs", "umount", dev, retry_busy=True)  # a new jail's clone, killed
    rerun = host.doit("run", "jail:pg-1", "jail:dev")
    assert rerun.returncode == 0, rerun.output
    assert {"host:datasets", "start:dev"} <= rerun.ran() and "clone:dev" not in rerun.ran()
    assert [argv for argv in rerun.changing_commands() if argv[0] == "zfs"] == [
        ["zfs", "mount", dev]]
    assert host.get("containers/dev", "mounted") == "yes"
    assert host.get("containers/dev", "origin") == origin
    assert (host.mountpoint("containers/dev") / "etc/rc").is_file()  # its tree, mounted
    assert host.running() == {"pg-1", "dev"}
    again = host.doit("run", "jail:pg-1", "jail:dev")
    assert again.ran() == set() and again.changing_commands() == []
