"""The ZFS mechanism on a real pool: one cached listing, local stamps, paths from mountpoints."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tasks.errors import CommandError
from tasks.runner import Runner
from tasks.zfs import Zfs
from tests.support import zfspool


@pytest.fixture
def root(pool: str) -> str:
    return f"{pool}/{uuid.uuid4().hex[:8]}/jails"


def make(root: str, tmp_path: Path) -> tuple[Zfs, Path]:
    log = tmp_path / "commands.log"
    return Zfs(Runner(log_path=log), root, tmp_path / "generation"), log


def listings(log: Path) -> int:
    return sum(json.loads(line)["argv"][:2] == ["zfs", "get"]
               for line in log.read_text().splitlines())


def test_paths_of_missing_datasets_come_from_the_nearest_ancestor(pool: str, root: str,
                                                                  tmp_path: Path) -> None:
    zfs, _ = make(root, tmp_path)
    pool_mp = Path(zfspool.zfs_get(pool, "mountpoint"))
    assert zfs.datasets() == {}
    assert zfs.mountpoint(f"{root}/media") == pool_mp / root.split("/", 1)[1] / "media"
    zfs.create(f"{root}/media", "test")
    assert zfs.mountpoint(f"{root}/media") == Path(zfspool.zfs_get(f"{root}/media",
                                                                   "mountpoint"))
    zfspool.run("zfs", "set", f"mountpoint={tmp_path}/elsewhere", root)
    assert zfs.mountpoint(f"{root}/media") == pool_mp / root.split("/", 1)[1] / "media"
    zfs.invalidate()  # a change made outside thinjail is seen on the next run
    assert zfs.mountpoint(f"{root}/media") == tmp_path / "elsewhere/media"
    assert zfs.mountpoint(f"{root}/templates/x") == tmp_path / "elsewhere/templates/x"


def test_one_listing_until_a_change_and_stamps_only_count_when_local(root: str,
                                                                    tmp_path: Path) -> None:
    zfs, log = make(root, tmp_path)
    zfs.create(f"{root}/templates/base", "test")
    for _ in range(5):
        assert zfs.exists(f"{root}/templates/base")
        assert zfs.stamp(f"{root}/templates/base", "extract") is None
    assert listings(log) == 1
    zfs.set_stamp(root, "extract", "inherited-must-not-count", "test")
    zfs.set_stamp(f"{root}/templates/base", "update", "abc", "test")
    assert zfs.stamp(f"{root}/templates/base", "extract") is None
    assert zfs.stamp(f"{root}/templates/base", "update") == "abc"
    assert listings(log) == 2  # re-read once after the changes
    zfs.clear_stamps(f"{root}/templates/base", ("update", "extract"), "test")
    assert zfs.stamp(f"{root}/templates/base", "update") is None


def test_another_process_sees_our_changes_through_the_generation_file(root: str,
                                                                     tmp_path: Path) -> None:
    ours, _ = make(root, tmp_path)
    theirs, _ = make(root, tmp_path)
    assert not theirs.exists(root)
    ours.create(root, "test")
    assert theirs.exists(root)


def test_unmounted_dataset_is_refused(root: str, tmp_path: Path) -> None:
    zfs, _ = make(root, tmp_path)
    zfs.create(root, "test")
    zfspool.run("zfs", "umount", root, retry_busy=True)
    zfs.invalidate()
    with pytest.raises(CommandError, match=r"is not mounted: `zfs mount"):
        zfs.directory(root)


def test_only_unmounted_file_systems_of_ours_are_listed_to_mount(root: str,
                                                                  tmp_path: Path) -> None:
    """What a `zfs create` killed before its mount leaves; never a dataset thinjail did not
    create, nor one that is not to be mounted."""
    zfs, _ = make(root, tmp_path)
    ours, noauto, theirs = f"{root}/media", f"{root}/noauto", f"{root}/theirs"
    zfs.create(ours, "test")
    zfs.create(noauto, "test")
    zfspool.run("zfs", "set", "canmount=noauto", noauto)
    zfspool.run("zfs", "create", theirs)
    (zfs.directory(ours) / "kept").write_text("kept\n")
    for name in (ours, noauto, theirs):
        zfspool.run("zfs", "umount", name, retry_busy=True)
    zfs.invalidate()
    assert zfs.unmounted_ours() == [ours]
    zfs.mount(ours, "test")
    assert zfs.unmounted_ours() == []
    assert (zfs.directory(ours) / "kept").read_text() == "kept\n"
    with pytest.raises(CommandError, match=r"is not mounted"):
        zfs.directory(theirs)
