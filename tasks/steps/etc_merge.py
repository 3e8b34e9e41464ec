"""etc merge: bring what a patch level changed in /etc into a moving jail's own /etc (in its
dataset), as etcupdate does: a three-way merge with the old level's skeleton as the
ancestor, the new level's as the target and the jail's file as the local copy.

- a file the jail did not change takes the new version;
- a file the jail changed is merged with `diff3 -m` (in FreeBSD's base and in GNU
  diffutils); a conflict keeps the jail's file and is reported by name, never forced;
- a file new in the level is added; one the jail deleted stays deleted.

Before the first change the jail's dataset is snapshotted as `@pre-<level>`, the way back.
The jail's tree is untrusted: its files are read and written without following links.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tasks.files import write_beneath
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


def merge_etc(runner: Runner, zfs: Zfs, move: EtcMerge) -> list[str]:
    """Merge the level's /etc changes into the jail; return the files left in conflict."""
    ancestor_root = zfs.directory(move.old_skeleton)
    target_root = zfs.directory(move.new_skeleton)
    jail_root = zfs.directory(move.container)
    conflicts: list[str] = []
    snapshot = f"{move.container}@pre-{move.level}"
    for relative in _changed_files(ancestor_root, target_root):
        target = (target_root / relative).read_bytes()
        ancestor = ancestor_root / relative
        if not is_plain_file(jail_root, relative):
            if not os.path.lexists(jail_root / relative) and not ancestor.exists():
                # New in the level.
                _write(zfs, jail_root, relative, target, snapshot,
                       os.stat(target_root / relative))
            continue  # deleted, or not a plain file: the jail's choice
        local = (jail_root / relative).read_bytes()
        mode = os.lstat(jail_root / relative)  # kept: /etc/master.passwd is 0600
        if local == target:
            continue
        if ancestor.is_file() and local == ancestor.read_bytes():
            _write(zfs, jail_root, relative, target, snapshot, mode)
            continue
        merged = runner.run(["diff3", "-m", str(jail_root / relative),
                             str(ancestor if ancestor.is_file() else os.devnull),
                             str(target_root / relative)], step=STEP, changes=False,
                            ok_codes=(0, 1, 2))  # 1: conflicts, 2: e.g. a binary file
        if merged.returncode == 0:
            _write(zfs, jail_root, relative, merged.stdout.encode(), snapshot, mode)
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


def _write(zfs: Zfs, jail_root: Path, relative: str, data: bytes, snapshot: str,
           like: os.stat_result) -> None:
    if not zfs.exists(snapshot):
        zfs.snapshot(snapshot, STEP)
    write_beneath(jail_root, relative, data, STEP, like)
