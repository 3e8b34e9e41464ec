"""`python -m tests.support.stopping_doit <doit args>`: doit, as `python -m doit` runs it,
that stops itself (SIGSTOP) at one exact point, so that a test can kill or interrupt it there
and nowhere else. The point is THINJAIL_TEST_STOP_AT:

- `command:<k>`: right after the k-th command that changed the host has ended (commands
  that only ask, like the background `jls`, do not count, so the points do not shift);
- `save:before`: after the last command, before doit saves its state;
- `save:inside`: inside doit's save, every task's row written, before the commit.

Once stopped, the file THINJAIL_TEST_STOPPED is written, naming the point. The product does
not know about this: the wrapper patches it from outside.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from doit.dependency import SqliteDB
from doit.doit_cmd import DoitMain

from tasks.runner import Runner

STOP_AT = os.environ.get("THINJAIL_TEST_STOP_AT", "")
STOPPED = Path(os.environ.get("THINJAIL_TEST_STOPPED", "/nonexistent"))


def stop_here(point: str) -> None:
    STOPPED.write_text(point)
    os.kill(os.getpid(), signal.SIGSTOP)


def stop_after_command(k: int) -> None:
    log = Runner._log
    done = 0

    def counting_log(self: Runner, step: str, commands: Any, changes: bool,
                     codes: list[int], seconds: float, ended: float) -> None:
        nonlocal done
        log(self, step, commands, changes, codes, seconds, ended)
        if changes:
            done += 1
            if done == k:
                stop_here(f"command:{k} ({step})")

    Runner._log = counting_log  # type: ignore[method-assign]


def stop_in_save(where: str) -> None:
    dump = SqliteDB.dump

    def stopping_dump(self: SqliteDB) -> None:
        if where == "before":
            stop_here("save:before")
            dump(self)
            return
        commit = self._conn.commit

        class Connection:  # sqlite3's connection has read-only attributes: wrap it
            def __getattr__(self, name: str) -> Any:
                return getattr(connection, name)

            def commit(self) -> None:
                stop_here("save:inside")
                commit()

        connection, self._conn = self._conn, Connection()
        dump(self)

    SqliteDB.dump = stopping_dump  # type: ignore[method-assign]


if STOP_AT.startswith("command:"):
    stop_after_command(int(STOP_AT.split(":", 1)[1]))
elif STOP_AT.startswith("save:"):
    stop_in_save(STOP_AT.split(":", 1)[1])
elif STOP_AT:
    raise SystemExit(f"stopping_doit: unknown point {STOP_AT!r}")

if __name__ == "__main__":
    sys.exit(DoitMain().run(sys.argv[1:]))
