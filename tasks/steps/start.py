"""start: create a jail from its own jail.conf.d file, as rc.d/jail does for `service jail
start NAME` (`jail -f FILE -c NAME`), and tell which jails run (one `jls` per run)."""

from __future__ import annotations

from pathlib import Path

from tasks.runner import Runner

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


def start_jail(runner: Runner, running: RunningJails, conf: Path, name: str) -> None:
    if name in running.names():
        return
    runner.run(["jail", "-f", str(conf), "-c", name], step=STEP)
    running.invalidate()
