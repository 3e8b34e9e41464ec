"""File-tree helpers shared by the steps: which template tree holds a path, and removal of
trees that may carry FreeBSD's immutable flags (var/empty is `schg`)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.runner import Runner

MOUNT_DIR = "skeleton"  # the directory in the base where the jail's clone is mounted


def is_plain_file(root: Path, relative: str) -> bool:
    """relative is a regular file below root, reached without following any link: a
    template is untrusted, and a link in it may point anywhere on the host."""
    path = root
    parts = [p for p in relative.split("/") if p]
    for i, part in enumerate(parts):
        if part in (".", ".."):
            return False
        path = path / part
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return False
        if not (stat.S_ISREG(mode) if i == len(parts) - 1 else stat.S_ISDIR(mode)):
            return False
    return bool(parts)


def template_root(base_root: Path, skeleton_root: Path, relative: str, step: str) -> Path:
    """Which tree holds `relative` (e.g. etc/localtime) now: the base while its top directory
    is a real directory there, the skeleton once the split moved it (the base then has the
    split's link, or, in the middle of a split, nothing). Anything else at the top is not
    the split's doing and is refused."""
    top = relative.split("/", 1)[0]
    try:
        mode = os.lstat(base_root / top).st_mode
    except FileNotFoundError:
        return skeleton_root
    if stat.S_ISDIR(mode):
        return base_root
    if stat.S_ISLNK(mode) and os.readlink(base_root / top) == link_target(top):
        return skeleton_root
    raise ThinjailError(f"{step}: {base_root / top} is neither a directory nor the skeleton "
                        f"split's link to {link_target(top)}: thinjail does not follow links "
                        "inside a template on the host")


def link_target(relative: str) -> str:
    """What base/<relative> points to after the split: `skeleton/etc`,
    `../skeleton/usr/local`, ..."""
    return os.path.relpath(f"{MOUNT_DIR}/{relative}", os.path.dirname(relative) or ".")


def remove_tree(runner: Runner, path: Path, step: str) -> None:
    """Remove a tree; when immutable flags refuse it, clear them the host's way and retry."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    try:
        shutil.rmtree(path)
    except PermissionError:
        if sys.platform.startswith("freebsd"):
            runner.run(["chflags", "-R", "0", str(path)], step=step)
        else:
            runner.run(["chattr", "-R", "-i", str(path)], step=step)
        shutil.rmtree(path)
