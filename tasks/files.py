"""Files thinjail writes: whole or not at all, and inside a template or jail only beneath its
root.

Every write goes to a temporary file of a unique name beside the target, is flushed to disk,
and is renamed over the target: a kill or a power loss leaves the old file or the new one,
never half of one, and two writers never share a temporary file.

A template or jail tree is untrusted: its archive may hold links to anywhere on the host
(`var/db -> /var/db`). A path below such a root is reached one component at a time with
O_NOFOLLOW, so a link where a directory should be stops the step with a message naming it
instead of leading the write onto the host. The last component may be a link: it is
replaced by the rename, never written through.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from tasks.errors import ThinjailError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY
FILE_MODE, DIR_MODE = 0o644, 0o755
# open(2) of a link with O_NOFOLLOW: ELOOP on Linux, EMLINK on FreeBSD.
_IS_LINK_ERRNOS = (errno.ELOOP, errno.EMLINK, errno.ENOTDIR)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace path (a host file thinjail owns) with data in one rename."""
    with _open_dir(path.parent) as dir_fd:
        _replace(dir_fd, path.name, lambda tmp: _write_new(dir_fd, tmp, data))


def write_beneath(root: Path, relative: str, data: bytes, step: str,
                  like: os.stat_result | None = None) -> None:
    """Replace root/relative with data; its directories are made if missing, and none may be
    a link. The new file gets the mode and owner of `like` (say, the file it replaces)."""
    directory, name = _split(relative)
    with walk_beneath(root, directory, step, create=True) as dir_fd:
        _replace(dir_fd, name, lambda tmp: _write_new(dir_fd, tmp, data, like))


def link_beneath(root: Path, relative: str, target: str, step: str) -> None:
    """Make root/relative a symlink to target (whatever it was: a file, a link)."""
    directory, name = _split(relative)
    with walk_beneath(root, directory, step, create=True) as dir_fd:
        _replace(dir_fd, name, lambda tmp: os.symlink(target, tmp, dir_fd=dir_fd))


def replace_with_link(path: Path, target: str) -> None:
    """Make path a symlink to target in one rename; path's directory was reached safely."""
    with _open_dir(path.parent) as dir_fd:
        _replace(dir_fd, path.name, lambda tmp: os.symlink(target, tmp, dir_fd=dir_fd))


def make_dirs_beneath(root: Path, relative: str, step: str) -> Path:
    """root/relative as a directory, made if missing, reached without following a link."""
    with walk_beneath(root, relative, step, create=True):
        return root / relative


def beneath(root: Path, relative: str, step: str) -> Path:
    """root/relative for a command to use (bsdtar -C, freebsd-update -d): its directories
    are checked to be real directories, so the path cannot lead out of root. The last
    component is returned as it is (the caller looks at what it is)."""
    directory, _ = _split(relative)
    with walk_beneath(root, directory, step, create=False):
        return root / relative


def existing_dir_beneath(root: Path, relative: str, step: str) -> Path | None:
    """root/relative if it is a directory reached through directories only; None if it is
    missing; a link or a file on the way stops the step."""
    try:
        with walk_beneath(root, relative, step, create=False):
            return root / relative
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def walk_beneath(root: Path, relative: str, step: str, *, create: bool) -> Iterator[int]:
    """An open descriptor of the directory root/relative, reached one component at a time
    without following links; with `create`, missing directories are made (DIR_MODE)."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        walked = root
        for part in [p for p in relative.split("/") if p]:
            if part in (".", ".."):
                raise ThinjailError(f"{step}: {root}/{relative}: a path with '{part}'")
            walked = walked / part
            try:
                child = _open_child(fd, part, walked, step)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):  # made meanwhile: opened below
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                child = _open_child(fd, part, walked, step)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_child(fd: int, part: str, walked: Path, step: str) -> int:
    try:
        return os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
    except OSError as exc:
        if exc.errno not in _IS_LINK_ERRNOS:
            raise
        raise _not_a_directory(fd, part, walked, step) from None


def _not_a_directory(fd: int, part: str, walked: Path, step: str) -> ThinjailError:
    mode = os.lstat(part, dir_fd=fd).st_mode
    what = (f"a symlink to {os.readlink(part, dir_fd=fd)}" if stat.S_ISLNK(mode)
            else "not a directory")
    return ThinjailError(f"{step}: {walked} is {what}: thinjail does not follow links inside "
                         "a template or jail on the host; the tree is not a FreeBSD base as "
                         "published (destroy the dataset, check the mirror, rerun)")


def _split(relative: str) -> tuple[str, str]:
    directory, _, name = relative.strip("/").rpartition("/")
    if not name or name in (".", ".."):
        raise ValueError(f"not a file path: {relative!r}")
    return directory, name


@contextlib.contextmanager
def _open_dir(path: Path) -> Iterator[int]:
    fd = os.open(path, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def _write_new(dir_fd: int, name: str, data: bytes,
               like: os.stat_result | None = None) -> None:
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE,
                 dir_fd=dir_fd)
    try:
        if like is not None:
            os.fchown(fd, like.st_uid, like.st_gid)
            os.fchmod(fd, stat.S_IMODE(like.st_mode))
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace(dir_fd: int, name: str, make: Callable[[str], None]) -> None:
    """Make a temporary entry with make(), rename it over name, and flush the directory."""
    tmp = f".{name}.{os.urandom(6).hex()}.thinjail-tmp"
    try:
        make(tmp)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)
