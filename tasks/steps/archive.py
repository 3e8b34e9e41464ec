"""Safety of a release archive, checked before anything is extracted.

An archive may only create files inside the template: no absolute or `..` member names, no
hard link to a name outside it, no relative symlink that climbs above its root, and no
device nodes (a jail's /dev is devfs). Absolute symlinks (etc/termcap -> /usr/share/...) are
allowed: inside the jail they resolve within its root, and thinjail never follows links of a
template on the host (tasks/files.py). One that names a directory of this host is not:
freebsd-update, which installs into the template by path, would install through it onto the
host. FreeBSD's base has no such link.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from pathlib import Path

from tasks.errors import ThinjailError

STEP = "extract"


def _escapes(path: str) -> bool:
    normal = posixpath.normpath(path)
    return normal == ".." or normal.startswith("../")


def problem_with(member: tarfile.TarInfo) -> str | None:
    """Why a member may not be extracted, or None."""
    name = member.name.removeprefix("./")
    if name.startswith("/"):
        return "has an absolute path"
    if ".." in name.split("/"):
        return "has a '..' path"
    if member.isdev():
        return "is a device node or FIFO"
    if member.islnk() and (member.linkname.startswith("/") or _escapes(member.linkname)
                           or ".." in member.linkname.split("/")):
        return f"is a hard link to {member.linkname}, outside the template"
    if member.issym() and not member.linkname.startswith("/") and _escapes(
            posixpath.join(posixpath.dirname(name), member.linkname)):
        return f"is a symlink to {member.linkname}, which leads out of the template"
    if member.issym() and member.linkname.startswith("/") and os.path.isdir(member.linkname):
        return (f"is a symlink to {member.linkname}, a directory of this host, which "
                "freebsd-update would install into")
    return None


def check_archive(archive: Path) -> int:
    """Read every member header; raise ThinjailError at the first unsafe one. Returns the
    number of members."""
    count = 0
    try:
        with tarfile.open(archive, mode="r|*") as tar:
            for member in tar:
                problem = problem_with(member)
                if problem:
                    raise ThinjailError(f"{STEP}: {archive.name} is unsafe: member "
                                        f"{member.name!r} {problem}; nothing was extracted")
                count += 1
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ThinjailError(f"{STEP}: {archive.name} is not a readable tar archive: {exc}; "
                            "nothing was extracted") from exc
    return count
