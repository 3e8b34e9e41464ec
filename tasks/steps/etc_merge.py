"""etc merge: bring what a patch level changed in /etc into a moving jail's own /etc (in its
dataset), as etcupdate does: a three-way merge with the old level's skeleton as the
ancestor, the new level's as the target and the jail's file as the local copy.

- a file the jail did not change takes the new version;
- a file the jail changed is merged with `diff3 -m` (in FreeBSD's base and in GNU
  diffutils); a conflict keeps the jail's file and is reported by name, never forced;
- a file new in the level is added; one the jail deleted stays deleted.

Before the first change the jail's dataset is snapshotted as `@pre-<level>`, the way back,
and each file's old content is kept in the state directory (`backup`) until the jail runs
on the new level: a move that fails puts the files back (restore_etc). The jail's tree is
untrusted: its files are read and written without following links.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.files import write_atomic, write_beneath
from tasks.runner import Runner
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
    backup: Path  # the files' contents before the merge (StartInputs.etc_backup)


def merge_etc(runner: Runner, zfs: Zfs, move: EtcMerge) -> list[str]:
    """Merge the level's /etc changes into the jail; return the files left in conflict."""
    ancestor_root = zfs.directory(move.old_skeleton)
    target_root = zfs.directory(move.new_skeleton)
    jail_root = zfs.directory(move.container)
    conflicts: list[str] = []
    snapshot = f"{move.container}@pre-{move.level}"

    def write(relative: str, data: bytes, like: os.stat_result) -> None:
        if not zfs.exists(snapshot):
            zfs.snapshot(snapshot, STEP)
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
    kept = _read_backup(move.backup) or {"container": move.container, "files": {}}
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
    """Put back what a merge changed in a jail's /etc (its move failed), then forget it."""
    kept = _read_backup(backup)
    if kept is None:
        return
    jail_root = zfs.directory(kept["container"])
    for relative, entry in kept["files"].items():
        if entry is None:
            if is_plain_file(jail_root, relative):
                (jail_root / relative).unlink()
            continue
        like = os.stat_result((entry["mode"], 0, 0, 0, entry["uid"], entry["gid"], 0, 0, 0, 0))
        write_beneath(jail_root, relative, base64.b64decode(entry["data"]), STEP, like)
    backup.unlink()
