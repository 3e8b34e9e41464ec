"""The one way thinjail runs external commands.

Every command is logged (JSON lines: step, argv, exit code, seconds) so an admin can see what a
run did; in a dry-run only the commands that change nothing run (the steps themselves are
printed, not called); commands missing on this host fail with a message naming the step.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from tasks.errors import CommandError, last_lines
from tasks.locks import file_lock

# Commands that exist only on a FreeBSD host; a missing one means "run this on FreeBSD".
FREEBSD_ONLY = frozenset({"jail", "jls", "jexec", "service", "sysrc", "freebsd-update",
                          "freebsd-version", "ifconfig", "route", "chflags", "devfs", "pkg"})
# zfs(8) verbs that change pools. Parallel runs (`doit -n`) pass them through one host-wide
# lock: ZFS serialises them anyway, and zfs-fuse hangs on concurrent clones and mounts.
ZFS_CHANGING_VERBS = frozenset({"create", "destroy", "snapshot", "clone", "rename", "mount",
                                "umount", "unmount", "set", "inherit", "receive", "recv",
                                "promote", "rollback"})
HOST_ZFS_LOCK = Path("/var/run/thinjail.zfs.lock")
T = TypeVar("T")


@dataclass
class Runner:
    log_path: Path | None = None
    dry_run: bool = False
    zfs_lock: Path | None = None  # held while a command changes ZFS (HOST_ZFS_LOCK)

    def run(self, argv: Sequence[str], *, step: str, changes: bool = True,
            env: Mapping[str, str] | None = None, ok_codes: Sequence[int] = (0,),
            ) -> subprocess.CompletedProcess[str]:
        """Run argv and return the finished process; raise CommandError on a missing command,
        an exit code outside ok_codes, or, in a dry-run, a command that changes state."""
        return self.pipeline([argv], step=step, changes=changes, env=env, ok_codes=ok_codes)

    def pipeline(self, commands: Sequence[Sequence[str]], *, step: str, changes: bool = True,
                 env: Mapping[str, str] | None = None, ok_codes: Sequence[int] = (0,),
                 stdout: IO[bytes] | None = None) -> subprocess.CompletedProcess[str]:
        """Run `a | b | ...`; fails when any stage fails. The result carries the last stage's
        stdout (unless it goes to the `stdout` file) and every stage's stderr."""
        for argv in commands:
            self._require(argv[0], step)
        text = " | ".join(shlex.join(argv) for argv in commands)
        if self.dry_run and changes:
            # A dry-run prints the steps instead of calling them (graph.run_step): a command
            # that changes the host must never get here.
            raise CommandError(f"{step}: a dry-run does not run `{text}`")
        full_env = {**os.environ, **env} if env else None
        with contextlib.ExitStack() as stack:
            if self.zfs_lock and any(_changes_zfs(argv) for argv in commands):
                stack.enter_context(file_lock(self.zfs_lock))
            start = time.monotonic()
            # Earlier stages' stderr goes to files: a pipe could fill and stall the pipeline.
            errs = [stack.enter_context(tempfile.TemporaryFile()) for _ in commands[:-1]]
            procs: list[subprocess.Popen[bytes]] = []
            for i, argv in enumerate(commands):
                last = i == len(commands) - 1
                stdin = procs[-1].stdout if procs else subprocess.DEVNULL
                out_to = (stdout or subprocess.PIPE) if last else subprocess.PIPE
                procs.append(subprocess.Popen(argv, stdin=stdin, stdout=out_to,
                                              stderr=subprocess.PIPE if last else errs[i],
                                              env=full_env))
                if i:
                    procs[-2].stdout.close()  # type: ignore[union-attr]  # reader owns it now
            out, last_err = procs[-1].communicate()
            codes = [p.wait() for p in procs]
            # Taken before the ZFS lock is released: the log says when each command ran.
            seconds, ended = time.monotonic() - start, time.time()
            for err_file in errs:
                err_file.seek(0)
            stderr = b"".join([*(f.read() for f in errs), last_err])
        self._log(step, commands, changes, codes, seconds, ended)
        rc = next((c for c in codes if c != 0), 0)
        result = subprocess.CompletedProcess(list(commands[-1]), rc,
                                             (out or b"").decode(errors="replace"),
                                             stderr.decode(errors="replace"))
        if rc not in ok_codes:
            detail = last_lines(result.stderr) or last_lines(result.stdout)
            raise CommandError(f"{step}: `{text}` failed with exit code {rc}"
                               + (f": {detail}" if detail else ""))
        return result

    def _require(self, command: str, step: str) -> None:
        if shutil.which(command) is not None:
            return
        if command in FREEBSD_ONLY:
            raise CommandError(f"{step}: needs `{command}`, a FreeBSD command that this host "
                               "does not have: run this step on the FreeBSD jail host")
        raise CommandError(f"{step}: needs `{command}`, which is not installed (see README.md "
                           "for the packages thinjail needs)")

    def _log(self, step: str, commands: Sequence[Sequence[str]], changes: bool,
             codes: list[int], seconds: float, ended: float) -> None:
        if self.log_path is None:
            return
        # A pipeline is logged as one argv with "|" between its stages.
        argv = [word for i, cmd in enumerate(commands) for word in (["|"] if i else []) + [*cmd]]
        entry = {"time": round(ended, 3), "step": step, "argv": argv, "rc": max(codes),
                 "seconds": round(seconds, 4), "changes": changes}
        # One write(2) of a whole line to an O_APPEND file: lines from threads and from
        # `doit -n` workers never interleave, and no lock is needed. (A thread lock would be
        # copied held into a worker forked while a background `jls` was logging, and that
        # worker would wait for it forever.)
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)


def _changes_zfs(argv: Sequence[str]) -> bool:
    return len(argv) > 1 and argv[0] == "zfs" and argv[1] in ZFS_CHANGING_VERBS


class Ahead(Generic[T]):
    """A call started in a thread before its answer is needed. Only the process that started
    it may wait for it: a process forked meanwhile (`doit -n`) has no such thread."""

    def __init__(self, call: Callable[[], T]) -> None:
        self._pid = os.getpid()
        self._result: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(call,), name="thinjail-ahead")
        self._thread.start()

    def _work(self, call: Callable[[], T]) -> None:
        try:
            self._result = call()
        except BaseException as exc:  # raised to whoever waits for the answer
            self._error = exc

    def result(self) -> T | None:
        """The call's result (or its exception); None in a process that did not start it."""
        if os.getpid() != self._pid:
            return None
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


class CachedAnswer(Generic[T]):
    """What a read-only command reports (`jls name`, `ifconfig -a`), asked once per run and
    cached until we change what it reports."""

    def __init__(self, runner: Runner, argv: Sequence[str], step: str,
                 parse: Callable[[str], T]) -> None:
        self.runner, self.argv, self.step, self.parse = runner, tuple(argv), step, parse
        self._answer: T | None = None
        self._ahead: Ahead[T] | None = None

    def prefetch(self) -> None:
        """Start asking now, in the background, so that the command's time overlaps the
        run's own work; answer() collects it."""
        if self._answer is None and self._ahead is None:
            self._ahead = Ahead(self._ask)

    def answer(self) -> T:
        if self._answer is None:
            ahead, self._ahead = self._ahead, None
            answer = ahead.result() if ahead else None
            self._answer = self._ask() if answer is None else answer
        return self._answer

    def _ask(self) -> T:
        return self.parse(self.runner.run(self.argv, step=self.step, changes=False).stdout)

    def invalidate(self) -> None:
        self._answer = None
        self._ahead = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_ahead": None}  # a thread does not cross processes
