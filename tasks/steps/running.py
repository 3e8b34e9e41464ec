"""Starting, stopping and restarting a jail, always from its own jail.conf.d file, as rc.d/jail
does for `service jail start NAME` (`jail -f FILE -c NAME`).

`start` restarts (`-rc`) a running jail when what it was started with changed: its conf, its
fstab, or its base (patch level, re-extraction). That is recorded as a digest in thinjail's
state directory; which jails run is asked from `jls` once per run. Stopping runs the jail's
exec.poststop hooks, which remove its epair, and does nothing for a stopped jail.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.plan import digest, file_digest
from tasks.runner import CachedAnswer, Runner
from tasks.steps.tree import write_atomic
from tasks.zfs import Zfs

STEP = "start"


class RunningJails(CachedAnswer):
    """The names of running jails."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner, ("jls", "name"), "jls")


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


def start_jail(runner: Runner, running: RunningJails, inputs: StartInputs, name: str,
               always: bool = False) -> None:
    """Start the jail, or restart it when it runs with other inputs (or `always`)."""
    if inputs.current(running, name) and not always:
        return
    # A running jail not started with these inputs (or by thinjail) is restarted with them.
    action = "-rc" if name in running.names() else "-c"
    runner.run(["jail", "-f", str(inputs.conf), action, name], step=STEP)
    running.invalidate()
    inputs.record.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(inputs.record, inputs.digest().encode())


def stop_jail(runner: Runner, running: RunningJails, conf: Path, record: Path,
              name: str) -> None:
    """Stop the jail if it runs (its exec.poststop hooks remove its epair)."""
    if name in running.names():
        runner.run(["jail", "-f", str(conf), "-r", name], step="stop")
        running.invalidate()
    record.unlink(missing_ok=True)
