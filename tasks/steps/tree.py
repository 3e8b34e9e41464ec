"""File-tree helpers shared by the steps: the template's view of a path, atomic writes, and
removal of trees that may carry FreeBSD's immutable flags (var/empty is `schg`)."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

from tasks.runner import Runner


def write_atomic(path: Path, data: bytes) -> None:
    """Replace path with data in one rename, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.thinjail-tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


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


def replace_with_link(path: Path, target: str) -> None:
    """Make path a symlink to target in one rename (whatever path was: a file, a link)."""
    tmp = path.with_name(f".{path.name}.thinjail-tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, path)


def template_path(base_root: Path, skeleton_root: Path, relative: str) -> Path:
    """Where `relative` (e.g. etc/localtime) lives on the host: in the base while its top
    directory is a real directory there, in the skeleton once the split moved it (the base
    then has a link, or, in the middle of a split, nothing)."""
    top = base_root / relative.split("/", 1)[0]
    if top.is_dir() and not top.is_symlink():
        return base_root / relative
    return skeleton_root / relative


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
