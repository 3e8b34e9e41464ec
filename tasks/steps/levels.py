"""Patch levels: a base is never changed once jails may mount it. A new level is made beside
the current one: its base and skeleton are clones of the current level's, freebsd-update
patches the clones, and the new base is then made read-only.

While freebsd-update runs, the new skeleton is mounted at the new base's `skeleton/`: after
the split the base's etc, var, root, tmp, home and usr/local are links into that directory,
and freebsd-update skips every file whose path does not resolve (`[ -e ${BASEDIR}/${F} ]`
in fetch_inspect_system).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.runner import Runner
from tasks.steps.tree import MOUNT_DIR
from tasks.zfs import Zfs

# Stamps that hold for a clone as for its origin: what the tree was extracted, set up and
# split with, and (once the update repaired the links again) the certs repair. The update
# stamps are the new level's own.
BASE_STAMPS = ("extract", "tzdns", "skeleton")
SKELETON_STAMPS = ("skeleton", "certs")


@dataclass(frozen=True)
class Level:
    """A done patch level of a release: its name (the first build's is the level of its
    files), the patch level freebsd-update reports for it (ahead after a kernel-only
    patch), and its datasets."""

    name: str
    patch: str
    base: str
    skeleton: str


def level_snapshot(level: str) -> str:
    """The snapshot of a level's base and skeleton that the next `level` is cloned from."""
    return f"level-{level}"


def level_datasets(levels: str, level: str) -> tuple[str, str]:
    """The base and skeleton datasets of `level` under the release's `levels` dataset."""
    return f"{levels}/{level}-base", f"{levels}/{level}-skeleton"


def make_level(runner: Runner, zfs: Zfs, step: str, *, base: str, skeleton: str,
               levels: str, level: str) -> tuple[str, str]:
    """Clone the current level's base and skeleton into `level`'s datasets, with the stamps
    that hold for the clones; return their names. What an interrupted attempt left (the new
    base has no update stamp until it is done, and nothing is cloned from it before) is
    removed first."""
    new_base, new_skeleton = level_datasets(levels, level)
    if zfs.exists(new_base):
        mount_point = zfs.directory(new_base) / MOUNT_DIR
        if mount_point.is_dir() and not mount_point.is_symlink() \
                and _is_mount_point(mount_point):
            runner.run(["umount", str(mount_point)], step=step)
    for name in (new_skeleton, new_base):
        if zfs.exists(name):
            if not zfs.created_by_us(name):
                raise ThinjailError(f"{step}: {name} exists but thinjail did not create it: "
                                    "rename or destroy it, then rerun")
            zfs.destroy(name, step, recursive=True)
    if not zfs.exists(levels):
        zfs.create(levels, step)
    # Named by the level cloned from them, on the base as on the skeleton: `doit purge`
    # promotes a later level over an older one, which moves such snapshots to it, and two
    # snapshots of one name there would stop it.
    origins = {new_base: f"{base}@{level_snapshot(level)}",
               new_skeleton: f"{skeleton}@{level_snapshot(level)}"}
    for source, (clone, snapshot) in zip((base, skeleton), origins.items(), strict=True):
        if not zfs.exists(snapshot):
            zfs.snapshot(snapshot, step)
        zfs.clone(snapshot, clone, step)
        for key in BASE_STAMPS if source == base else SKELETON_STAMPS:
            value = zfs.stamp(source, key)
            if value is not None:
                zfs.set_stamp(clone, key, value, step)
    return new_base, new_skeleton


@contextlib.contextmanager
def skeleton_mounted(runner: Runner, skeleton_root: Path, base_root: Path, step: str,
                     read_only: bool = False) -> Iterator[None]:
    """Mount the skeleton at the base's `skeleton/` for the with-block: nullfs on FreeBSD, a
    bind mount on Linux; not recursive, so jails that have the base mounted do not see it.
    A mount left there by an interrupted run is taken off first. A `read_only` one, for a
    question to freebsd-update, writes nothing and is not counted as a change (a dry-run
    makes it too)."""
    mount_point = base_root / MOUNT_DIR
    changes = not read_only
    if _is_mount_point(mount_point):
        runner.run(["umount", str(mount_point)], step=step, changes=changes)
    freebsd = sys.platform.startswith("freebsd")
    mount = ["mount", "-t", "nullfs"] if freebsd else ["mount", "--bind"]
    if read_only:
        mount += ["-o", "ro"]
    runner.run([*mount, str(skeleton_root), str(mount_point)], step=step, changes=changes)
    try:
        yield
    finally:
        runner.run(["umount", str(mount_point)], step=step, changes=changes)


def _is_mount_point(directory: Path) -> bool:
    return os.stat(directory).st_dev != os.stat(directory.parent).st_dev


def levels_to_purge(levels: list[Level], in_use: set[str], keep: int) -> list[Level]:
    """The levels (oldest first) that are neither among the `keep` newest nor a base that a
    jail mounts or is pinned to (`in_use`: base datasets)."""
    kept = {level.base for level in levels[-keep:]} | in_use
    return [level for level in levels if level.base not in kept]


def purge_level(zfs: Zfs, level: Level, levels_root: str) -> bool:
    """Destroy a level's base and skeleton. The next level, cloned from them, is promoted
    first: it takes over their snapshots up to the one it was cloned from, and with them
    the origin of jails cloned from the old skeleton (the jails' datasets are not touched).
    A dataset with any other clone is kept, and said so; return whether both went."""
    for dataset in (level.base, level.skeleton):
        for clone in zfs.clones(dataset):
            if clone.startswith(f"{levels_root}/"):
                zfs.promote(clone, "purge")
        if not zfs.exists(dataset):
            continue
        if others := zfs.clones(dataset):
            print(f"purge: {dataset} is kept: {', '.join(others)} cloned from it")
            return False
        if not zfs.created_by_us(dataset):
            raise ThinjailError(f"purge: {dataset} was not created by thinjail: not touching it")
        zfs.destroy(dataset, "purge", recursive=True)
    return True
