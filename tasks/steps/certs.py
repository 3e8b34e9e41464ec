"""certs: make every symlink the skeleton split moved resolve as it did before the move.

Inside a jail the base is `/` and the skeleton is mounted at `/skeleton`, with /etc, /var ...
in the base being links into it. A relative link such as etc/ssl/certs/x.pem ->
../../../usr/share/certs/trusted/x.pem now starts from /skeleton/etc/ssl/certs and misses.
Each moved relative link is checked: if it now reaches another place than before the move,
it is rewritten to reach the old place again. Absolute links, hard links and regular files
(other certctl styles) are left alone; the repair is idempotent.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tasks.files import existing_dir_beneath, replace_with_link
from tasks.inputs import StepInputs
from tasks.steps.skeleton import OPTIONAL_SPLIT_DIRS, SPLIT_DIRS
from tasks.steps.tree import MOUNT_DIR
from tasks.zfs import Zfs

STEP = "certs"
MOVED = (*SPLIT_DIRS, *OPTIONAL_SPLIT_DIRS)


def jail_view(path: str) -> str:
    """A jail path with the base's links into /skeleton followed: two paths name the same
    file in the jail exactly when their views are equal."""
    for top in MOVED:
        if path == f"/{top}" or path.startswith(f"/{top}/"):
            return f"/{MOUNT_DIR}{path}"
    return path


def repaired_target(relative: str, target: str) -> str | None:
    """The new target for a link at skeleton/<relative>, or None when it needs no change."""
    if target.startswith("/"):
        return None
    directory = posixpath.dirname(relative)
    before = posixpath.normpath(posixpath.join("/", directory, target))
    after_dir = posixpath.join("/", MOUNT_DIR, directory)
    after = posixpath.normpath(posixpath.join(after_dir, target))
    if jail_view(before) == jail_view(after):
        return None
    return posixpath.relpath(before, after_dir)


@dataclass(frozen=True)
class CertsInputs(StepInputs):
    """The skeleton whose split has stamp `split`."""

    STEP = STEP
    STAMPED = ("version", "split")
    version: ClassVar[int] = 1
    skeleton: str
    split: str


def repair_links(zfs: Zfs, want: CertsInputs) -> int:
    """Repair the skeleton's moved links and stamp it; return how many were rewritten."""
    repaired = repair_tree(zfs.directory(want.skeleton))
    zfs.set_stamp(want.skeleton, STEP, want.stamp, STEP)
    return repaired


def repair_tree(root: Path) -> int:
    """Repair the moved links below a skeleton's root (also after a patch update, whose
    `certctl rehash` writes links as if etc were not moved); return how many."""
    repaired = 0
    for top in MOVED:
        # os.walk follows no link below the top; the top itself is checked.
        top_dir = existing_dir_beneath(root, top, STEP)
        for dirpath, dirnames, filenames in os.walk(top_dir) if top_dir else ():
            for name in (*filenames, *dirnames):
                link = Path(dirpath, name)
                if not link.is_symlink():
                    continue
                new = repaired_target(str(link.relative_to(root)), os.readlink(link))
                if new is not None:
                    replace_with_link(link, new)
                    repaired += 1
    return repaired
