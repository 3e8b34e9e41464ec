"""Shared by the fake FreeBSD commands: where their state lives and how calls are logged.

The fakes stand in for commands that exist only on FreeBSD. They check their arguments as
the real tools do, keep their state under $THINJAIL_FAKE_STATE and append every call to
$THINJAIL_FAKE_STATE/calls.log (one JSON object per line).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn


def state_dir() -> Path:
    path = Path(os.environ["THINJAIL_FAKE_STATE"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_call(tool: str) -> list[str]:
    """Log this call and return its arguments."""
    args = sys.argv[1:]
    entry = {"tool": tool, "argv": [tool, *args], "pager": os.environ.get("PAGER")}
    with (state_dir() / "calls.log").open("a") as f:
        f.write(json.dumps(entry) + "\n")
    return args


def fail(tool: str, message: str, code: int = 1) -> NoReturn:
    print(f"{tool}: {message}", file=sys.stderr)
    sys.exit(code)


def running_dir() -> Path:
    path = state_dir() / "running"
    path.mkdir(exist_ok=True)
    return path


@contextmanager
def locked() -> Iterator[None]:
    """Serialise changes to shared fake state, as the kernel serialises the real ones."""
    with (state_dir() / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
