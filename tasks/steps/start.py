"""start: create a jail from its own jail.conf.d file, as rc.d/jail does for `service jail
start NAME` (`jail -f FILE -c NAME`), or restart it (`-rc`) when what it was started with
changed: its conf, its fstab, or its base (patch level, re-extraction).

What a jail was started with is recorded as a digest in thinjail's state directory; which
jails run is asked from `jls` once per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.plan import digest, file_digest
from tasks.runner import Runner
from tasks.steps.tree import write_atomic
from tasks.zfs import Zfs

STEP = "start"


class RunningJails:
    """The names of running jails, asked once and cached until we start one."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._names: frozenset[str] | None = None

    def names(self) -> frozenset[str]:
        if self._names is None:
            result = self.runner.run(["jls", "name"], step="jls", changes=False)
            self._names = frozenset(result.stdout.split())
        return self._names

    def invalidate(self) -> None:
        self._names = None


@dataclass(frozen=True)
class StartInputs:
    """Everything a running jail depends on; a change means a restart."""

    zfs: Zfs
    conf: Path
    fstab: Path
    base: str
    record: Path  # where the digest of the inputs the jail was started with is kept

    def digest(self) -> str:
        return digest(file_digest(self.conf), file_digest(self.fstab),
                      self.zfs.stamp(self.base, "patch"), self.zfs.stamp(self.base, "extract"))

    def current(self, running: RunningJails, name: str) -> bool:
        try:
            started_with = self.record.read_text()
        except FileNotFoundError:
            started_with = None
        return name in running.names() and started_with == self.digest()


def start_jail(runner: Runner, running: RunningJails, inputs: StartInputs, name: str) -> None:
    if inputs.current(running, name):
        return
    # A running jail not started with these inputs (or by thinjail) is restarted with them.
    action = "-rc" if name in running.names() else "-c"
    runner.run(["jail", "-f", str(inputs.conf), action, name], step=STEP)
    running.invalidate()
    inputs.record.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(inputs.record, inputs.digest().encode())
