"""skeleton: move the writable, per-jail parts of the base into the skeleton dataset and
leave links in the base that point into the `skeleton/` mount point.

Each directory is copied with bsdtar (keeps flags such as var/empty's `schg`, hard links and
modes), swapped into place by rename, and only then taken out of the base, by rename first,
so an interrupted run never leaves a half-removed directory that a rerun would copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tasks.errors import ThinjailError
from tasks.files import beneath, existing_dir_beneath, link_beneath, make_dirs_beneath
from tasks.inputs import StepInputs
from tasks.runner import Runner
from tasks.steps.pkgbase import DBDIR
from tasks.steps.tree import MOUNT_DIR, link_target, remove_tree
from tasks.zfs import Zfs

STEP = "skeleton"
TRASH_SUFFIX = ".thinjail-old"
STAGE_SUFFIX = ".thinjail-new"
# The writable, per-jail parts of a FreeBSD tree, moved from the base into the skeleton; the
# optional ones are created empty in the skeleton when base.txz has none.
SPLIT_DIRS = ("etc", "root", "tmp", "var")
OPTIONAL_SPLIT_DIRS = ("usr/local", "home")


@dataclass(frozen=True)
class SkeletonInputs(StepInputs):
    """The directories split off the base extracted with stamp `extract`."""

    STEP = STEP
    STAMPED = ("version", "extract", "split", "split_if_present")
    version: ClassVar[int] = 1
    base: str
    skeleton: str
    extract: str
    split: tuple[str, ...] = SPLIT_DIRS
    split_if_present: tuple[str, ...] = OPTIONAL_SPLIT_DIRS


def split_skeleton(runner: Runner, zfs: Zfs, want: SkeletonInputs) -> None:
    base, skeleton = want.base, want.skeleton
    if zfs.exists(skeleton):
        zfs.clear_stamps(skeleton, ("skeleton", "certs"), STEP)
    else:
        zfs.create(skeleton, STEP)
    zfs.clear_stamps(base, ("skeleton",), STEP)
    base_root, skeleton_root = zfs.directory(base), zfs.directory(skeleton)
    for relative in (*want.split, *want.split_if_present):
        _move_dir(runner, base_root, skeleton_root, relative, relative in want.split_if_present)
    make_dirs_beneath(base_root, MOUNT_DIR, STEP)
    for relative in (*want.split, *want.split_if_present):
        _link(beneath(base_root, relative, STEP), link_target(relative))
    if existing_dir_beneath(base_root, DBDIR.lstrip("/"), STEP):
        # A pkgbase base keeps its package database; its var/db/pkg, which now leads into
        # the mount point, finds it there on the host (a jail's clone hides it).
        link_beneath(base_root, f"{MOUNT_DIR}/var/db/pkg",
                     os.path.relpath(DBDIR, f"/{MOUNT_DIR}/var/db"), STEP)
    zfs.set_stamp(skeleton, STEP, want.stamp, STEP)
    zfs.set_stamp(base, STEP, want.stamp, STEP)


def _move_dir(runner: Runner, base_root: Path, skeleton_root: Path, relative: str,
              optional: bool) -> None:
    # Neither path may lead out of its tree: the directories above them are checked.
    source = beneath(base_root, relative, STEP)
    parent, _, name = relative.rpartition("/")
    dest = make_dirs_beneath(skeleton_root, parent, STEP) / name
    trash = source.with_name(source.name + TRASH_SUFFIX)
    remove_tree(runner, trash, STEP)  # left by an interrupted run, after dest was complete
    if source.is_dir() and not source.is_symlink():
        stage = dest.with_name(dest.name + STAGE_SUFFIX)
        remove_tree(runner, stage, STEP)
        stage.mkdir()
        runner.pipeline([["bsdtar", "-c", "-f", "-", "-C", str(source), "."],
                         ["bsdtar", "-x", "-p", "-f", "-", "-C", str(stage)]], step=STEP)
        old = dest.with_name(dest.name + TRASH_SUFFIX)
        if os.path.lexists(dest):
            os.rename(dest, old)
        os.rename(stage, dest)
        remove_tree(runner, old, STEP)
        os.rename(source, trash)
        remove_tree(runner, trash, STEP)
    elif optional:
        make_dirs_beneath(skeleton_root, relative, STEP)
    elif existing_dir_beneath(skeleton_root, relative, STEP) is None:
        raise ThinjailError(
            f"{STEP}: {relative} is neither in the base ({base_root}) nor in the skeleton "
            f"({skeleton_root}): the templates are incomplete; destroy the base dataset "
            "(it holds no jail data) and rerun to rebuild both")


def _link(link: Path, target: str) -> None:
    if link.is_symlink():
        if os.readlink(link) == target:
            return
        link.unlink()
    elif link.exists():
        raise ThinjailError(f"{STEP}: {link} exists and is not a link into {MOUNT_DIR}/")
    os.symlink(target, link)
