"""doit's own state file: saved in SQLite transactions, set aside when unreadable.

doit's JSON backend saves by truncating its file and writing it again, so a kill during the
save leaves a file that every later run dies on. Its SQLite backend commits each save as a
transaction (a kill or a power loss leaves the last committed state) and costs the same on
a no-op of 100 jails (bench/results/state_backend.json). A file SQLite cannot read (damaged
by something else, or the JSON of an older thinjail) is renamed aside with a warning: every
step of thinjail checks the host itself, so the run only loses the shortcut the state gave.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import time
from pathlib import Path

BACKEND = "sqlite3"
COPY_PREFIX = "doit-copy-"  # what a dry-run or a report reads: doit-copy-<pid>.db


def unreadable(path: Path) -> str | None:
    """Why SQLite cannot use the state file, or None (also when it is missing, or locked by
    a run that is saving it)."""
    if not path.exists():
        return None
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
            verdict = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.OperationalError:
        return None  # busy: another process holds it, and it is not ours to judge now
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if verdict == [("ok",)] else "; ".join(str(row[0]) for row in verdict[:3])


def set_aside(path: Path, reason: str) -> str:
    """Rename an unreadable state file (and its journal) out of doit's way; the warning."""
    aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(aside)
    journal = path.with_name(path.name + "-journal")
    if journal.exists():
        journal.rename(aside.with_name(aside.name + "-journal"))
    return (f"doit's state {path} was unreadable ({reason}); set aside as {aside.name}: this "
            "run checks every step on the host")


def state_file(real: Path, copy: bool) -> tuple[Path, list[str]]:
    """The state file doit is to use, and warnings to print. With `copy` (a dry-run, a
    report) it is a copy of the real one: it sees what a real run would see, and what a
    dry-run "did" is marked done neither for a real run nor the next dry-run; an unreadable
    real one is left to the next run."""
    problem = unreadable(real)
    if not copy:
        return real, [set_aside(real, problem)] if problem else []
    _remove_stale_copies(real.parent)
    private = real.parent / f"{COPY_PREFIX}{os.getpid()}.db"  # one per process: runs may overlap
    atexit.register(private.unlink, missing_ok=True)
    if problem:
        return private, [f"doit's state {real} is unreadable ({problem}): assuming no step "
                         "done; the next run sets it aside"]
    if real.exists():
        # SQLite's own copy: consistent even while a run commits to the real file.
        with contextlib.closing(sqlite3.connect(real, timeout=10)) as source, \
                contextlib.closing(sqlite3.connect(private)) as target:
            source.backup(target)
    return private, []


def _remove_stale_copies(state_dir: Path) -> None:
    """Copies left by dry-runs and reports that were killed before they could remove them."""
    for copy in state_dir.glob(f"{COPY_PREFIX}*.db"):
        pid = copy.name[len(COPY_PREFIX):-len(".db")]
        if pid.isdigit() and not _alive(int(pid)):
            copy.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True
