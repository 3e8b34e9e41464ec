"""Advisory file locks: one run per config at a time, and state that parallel tasks share
(`doit -n`)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tasks.errors import ThinjailError


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on path (created if missing) for the with-block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def hold_run_lock(path: Path) -> IO[str]:
    """Take the lock of one config's runs without waiting, for as long as this process lives
    (the kernel drops it when the process ends, even killed); fail clearly when another run
    holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise ThinjailError(f"another thinjail run on this config is in progress ({holder}): "
                            "wait for it to finish, then rerun") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
    handle.flush()
    return handle
