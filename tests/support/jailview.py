"""Resolve paths as a running thin jail sees them: `/` is the base (nullfs, read-only) and
`/skeleton` is the jail's clone. An independent oracle for the link repair."""

from __future__ import annotations

import os
from pathlib import Path

MAX_LINKS = 32  # like the kernel's MAXSYMLINKS


def host_path(base: Path, clone: Path, parts: list[str]) -> Path:
    if parts[:1] == ["skeleton"]:
        return clone.joinpath(*parts[1:])
    return base.joinpath(*parts)


def resolve(base: Path, clone: Path, path: str) -> tuple[str, Path]:
    """Follow every symlink of `path` in the jail's view; return the final jail path and the
    host file it is."""
    pending = [p for p in path.split("/") if p]
    done: list[str] = []
    followed = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            done = done[:-1]
            continue
        candidate = [*done, part]
        on_host = host_path(base, clone, candidate)
        if on_host.is_symlink():
            followed += 1
            if followed > MAX_LINKS:
                raise OSError(f"too many links resolving {path}")
            target = os.readlink(on_host)
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p] + pending
        else:
            done = candidate
    return "/" + "/".join(done), host_path(base, clone, done)
