"""etc merge: bring what a patch level changed in /etc into a moving jail's own /etc (in its
dataset), as etcupdate does: a three-way merge with the old level's skeleton as the
ancestor, the new level's as the target and the jail's file as the local copy.

- a file the jail did not change takes the new version;
- a file the jail changed is merged with `diff3 -m` (in FreeBSD's base and in GNU
  diffutils); a conflict keeps the jail's file and is reported by name, never forced;
- a file new in the level is added; one the jail deleted stays deleted.

Every move first snapshots the jail's dataset as `@pre-<level>` (`@pre-<level>.<n>` when
an earlier move to that level took that name), the way back; and each file's old content is
kept in the state directory (`backup`, which also records the move and its snapshot) until
the jail runs on the new level: a move that fails puts the files back (restore_etc), and
its retries keep the record, so they take no further snapshot.

A rollback (`doit rollback:<jail>`) moves a jail back to the level its pin names and, instead
of merging, makes its /etc what it was when it last left that level: the newest `@pre-*`
snapshot whose `thinjail:from` names it, read through a temporary clone (zfs-fuse has no `.zfs`
directory), the clone destroyed after.

The jail's tree is untrusted: its files are read and written without following links.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.files import (
    link_beneath,
    make_dirs_beneath,
    walk_beneath,
    write_atomic,
    write_beneath,
)
from tasks.runner import Runner
from tasks.steps.datasets import snapshots_oldest_first
from tasks.steps.tree import is_plain_file
from tasks.zfs import Zfs

STEP = "merge"


@dataclass(frozen=True)
class EtcMerge:
    """A jail's move: its dataset, and the skeletons of the level it leaves and joins."""

    container: str
    old_skeleton: str
    new_skeleton: str
    level: str  # the level it moves to: names the snapshot taken first
    leaving: str  # the level it leaves: the snapshot's thinjail:from
    backup: Path  # the files' contents before the merge (StartInputs.etc_backup)
    restore_from: str | None = None  # a rollback: the snapshot whose /etc the jail gets
    scratch: str | None = None  # a rollback: where the snapshot is cloned to be read


def left_from(runner: Runner, zfs: Zfs, container: str, level: str) -> str | None:
    """The jail's newest `@pre-*` snapshot taken as it left `level`: its /etc as it was on
    that level."""
    found = [name for name in snapshots_oldest_first(runner, container, "rollback")
             if name.startswith(f"{container}@pre-") and zfs.stamp(name, "from") == level]
    return found[-1] if found else None


def pre_snapshots(zfs: Zfs, container: str, level: str) -> list[str]:
    """The jail's `@pre-<level>` snapshots, oldest first."""
    prefix = f"{container}@pre-{level}"
    found = [name for name in zfs.datasets()
             if name == prefix or re.fullmatch(rf"{re.escape(prefix)}\.[0-9]+", name)]
    return sorted(found, key=lambda name: int(name.rpartition(".")[2])
                  if name != prefix else 1)


def move_etc(runner: Runner, zfs: Zfs, move: EtcMerge) -> list[str]:
    """Snapshot the jail, then merge the level's /etc changes into it (or, for a rollback,
    restore its /etc); return the files left in conflict."""
    _begin(zfs, move)
    if move.restore_from is not None:
        _restore_from_snapshot(runner, zfs, move)
        return []
    return _merge(runner, zfs, move)


def _begin(zfs: Zfs, move: EtcMerge) -> None:
    """Record the move (a rerun of the same move keeps its record and snapshot) and take
    its snapshot."""
    kept = _read_backup(move.backup)
    if kept is None or kept.get("level") != move.level:
        taken = pre_snapshots(zfs, move.container, move.level)
        snapshot = f"{move.container}@pre-{move.level}" + (f".{len(taken) + 1}" if taken else "")
        # The files an unfinished earlier move changed stay: a failed start puts them back.
        kept = {"files": {}, **(kept or {}), "container": move.container,
                "level": move.level, "snapshot": snapshot}
        write_atomic(move.backup, json.dumps(kept).encode())
    if not zfs.exists(kept["snapshot"]):
        zfs.snapshot(kept["snapshot"], STEP)
    if zfs.stamp(kept["snapshot"], "from") is None:  # what a rollback to it looks for
        zfs.set_stamp(kept["snapshot"], "from", move.leaving, STEP)


def _merge(runner: Runner, zfs: Zfs, move: EtcMerge) -> list[str]:
    ancestor_root = zfs.directory(move.old_skeleton)
    target_root = zfs.directory(move.new_skeleton)
    jail_root = zfs.directory(move.container)
    conflicts: list[str] = []

    def write(relative: str, data: bytes, like: os.stat_result) -> None:
        _back_up(move, jail_root, relative)
        write_beneath(jail_root, relative, data, STEP, like)

    for relative in _changed_files(ancestor_root, target_root):
        target = (target_root / relative).read_bytes()
        ancestor = ancestor_root / relative
        if not is_plain_file(jail_root, relative):
            if not os.path.lexists(jail_root / relative) and not ancestor.exists():
                write(relative, target, os.stat(target_root / relative))  # new in the level
            continue  # deleted, or not a plain file: the jail's choice
        local = (jail_root / relative).read_bytes()
        mode = os.lstat(jail_root / relative)  # kept: /etc/master.passwd is 0600
        if local == target:
            continue
        if ancestor.is_file() and local == ancestor.read_bytes():
            write(relative, target, mode)
            continue
        merged = runner.run(["diff3", "-m", str(jail_root / relative),
                             str(ancestor if ancestor.is_file() else os.devnull),
                             str(target_root / relative)], step=STEP, changes=False,
                            ok_codes=(0, 1, 2))  # 1: conflicts, 2: e.g. a binary file
        if merged.returncode == 0:
            write(relative, merged.stdout.encode(), mode)
        else:
            conflicts.append(f"/{relative}")
    for path in conflicts:
        print(f"{STEP}: warning: {move.container}: {path} was changed in the jail and by "
              f"{move.level}; the jail's version is kept: merge it by hand")
    return conflicts


def _changed_files(ancestor_root: Path, target_root: Path) -> list[str]:
    """The regular files under the target's etc that differ from the ancestor's (links and
    what is below a link are not followed)."""
    changed = []
    for dirpath, _, filenames in os.walk(target_root / "etc"):
        for name in filenames:
            path = Path(dirpath, name)
            relative = str(path.relative_to(target_root))
            if path.is_symlink() or not path.is_file():
                continue
            ancestor = ancestor_root / relative
            if not (is_plain_file(ancestor_root, relative)
                    and ancestor.read_bytes() == path.read_bytes()):
                changed.append(relative)
    return sorted(changed)


def _back_up(move: EtcMerge, jail_root: Path, relative: str) -> None:
    """Keep the file's content before the merge's first write to it (a rerun keeps the
    first backup): None for a file the merge adds."""
    kept = _read_backup(move.backup) or {}
    kept.setdefault("files", {})
    if relative in kept["files"]:
        return
    entry = None
    if is_plain_file(jail_root, relative):
        st = os.lstat(jail_root / relative)
        entry = {"data": base64.b64encode((jail_root / relative).read_bytes()).decode(),
                 "mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid}
    kept["files"][relative] = entry
    write_atomic(move.backup, json.dumps(kept).encode())


def _read_backup(backup: Path) -> dict[str, Any] | None:
    try:
        return json.loads(backup.read_text())
    except FileNotFoundError:
        return None


def restore_etc(zfs: Zfs, backup: Path) -> None:
    """Put back what a move changed in a jail's /etc (its start failed). The record stays,
    emptied of files, so the move's retry keeps its snapshot."""
    kept = _read_backup(backup)
    if kept is None:
        return
    jail_root = zfs.directory(kept["container"])
    if kept.pop("restored", None):  # a rollback replaced /etc: the snapshot has it as it was
        _sync_etc(_snapshot_clone(zfs, kept["snapshot"], kept["scratch"]), jail_root)
        zfs.destroy(kept["scratch"], STEP)
    for relative, entry in kept.get("files", {}).items():
        if entry is None:
            if is_plain_file(jail_root, relative):
                (jail_root / relative).unlink()
            continue
        like = os.stat_result((entry["mode"], 0, 0, 0, entry["uid"], entry["gid"], 0, 0, 0, 0))
        write_beneath(jail_root, relative, base64.b64decode(entry["data"]), STEP, like)
    kept["files"] = {}
    write_atomic(backup, json.dumps(kept).encode())


def _restore_from_snapshot(runner: Runner, zfs: Zfs, move: EtcMerge) -> None:
    """Make the jail's /etc what it is in `move.restore_from`. The record notes it, so a
    failed start restores /etc from the move's own snapshot instead (restore_etc)."""
    kept = _read_backup(move.backup) or {}
    if not kept.get("restored"):
        kept.update(restored=True, scratch=move.scratch)
        write_atomic(move.backup, json.dumps(kept).encode())
    source = _snapshot_clone(zfs, str(move.restore_from), str(move.scratch))
    _sync_etc(source, zfs.directory(move.container))
    zfs.destroy(str(move.scratch), STEP)
    print(f"{STEP}: {move.container}: /etc restored from {move.restore_from}")


def _snapshot_clone(zfs: Zfs, snapshot: str, scratch: str) -> Path:
    """A fresh clone of the snapshot at `scratch`, to read its files; one an interrupted
    run left is made again."""
    if zfs.exists(scratch):
        zfs.destroy(scratch, STEP)
    parent = scratch.rpartition("/")[0]
    if not zfs.exists(parent):
        zfs.create(parent, STEP)
    zfs.clone(snapshot, scratch, STEP)
    return zfs.directory(scratch)


def _sync_etc(source_root: Path, jail_root: Path) -> None:
    """Make the jail's etc what source_root's etc is: its files and links written, its
    directories made, and what the source lacks removed. Both trees are read without
    following links; the jail's is changed through descriptors (walk_beneath, fwalk), so a
    link the running jail swaps in leads nowhere."""
    present = set()
    for dirpath, dirnames, filenames in os.walk(source_root / "etc"):
        directory = Path(dirpath).relative_to(source_root)
        for name in [*dirnames, *filenames]:
            relative = f"{directory}/{name}"
            present.add(relative)
            st = os.lstat(source_root / relative)
            if stat.S_ISDIR(st.st_mode):
                _remove_unless(jail_root, relative, stat.S_ISDIR)
                make_dirs_beneath(jail_root, relative, STEP)
            elif stat.S_ISLNK(st.st_mode):
                _remove_unless(jail_root, relative, lambda mode: not stat.S_ISDIR(mode))
                link_beneath(jail_root, relative, os.readlink(source_root / relative), STEP)
            elif stat.S_ISREG(st.st_mode):
                _remove_unless(jail_root, relative, lambda mode: not stat.S_ISDIR(mode))
                write_beneath(jail_root, relative, (source_root / relative).read_bytes(),
                              STEP, like=st)
    with walk_beneath(jail_root, "etc", STEP, create=True) as etc_fd:
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(".", topdown=False, dir_fd=etc_fd):
            directory = os.path.normpath(f"etc/{dirpath}")
            for name in [*dirnames, *filenames]:
                if f"{directory}/{name}" in present:
                    continue
                if stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode):
                    shutil.rmtree(name, dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)


def _remove_unless(root: Path, relative: str, wanted: Callable[[int], bool]) -> None:
    """Remove root/relative (reached without following links) if it is of another kind than
    `wanted` allows, so the kind the source has can take its place."""
    directory, _, name = relative.rpartition("/")
    try:
        with walk_beneath(root, directory, STEP, create=False) as dir_fd:
            mode = os.lstat(name, dir_fd=dir_fd).st_mode
            if wanted(mode):
                return
            if stat.S_ISDIR(mode):
                shutil.rmtree(name, dir_fd=dir_fd)
            else:
                os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
