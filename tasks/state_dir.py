"""The files thinjail keeps for one config, named in one place.

They live beside the config, in `.<config stem>.thinjail/`, not in the checkout: two configs
on one host keep apart, and a new checkout finds the state of the config it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tasks.inputs import InputsRecord


@dataclass(frozen=True)
class StateDir:
    path: Path

    @classmethod
    def of(cls, config_path: Path) -> StateDir:
        return cls(config_path.resolve().parent / f".{config_path.stem}.thinjail")

    @property
    def doit_db(self) -> Path:
        """doit's own state (tasks/doit_state.py); dry-runs and reports read copies of it."""
        return self.path / "doit.db"

    @property
    def commands_log(self) -> Path:
        return self.path / "commands.log"

    @property
    def zfs_generation(self) -> Path:
        """Bumped by every ZFS change, so a cached `zfs list` is known stale (tasks/zfs.py)."""
        return self.path / "zfs.generation"

    @property
    def patch_offers(self) -> Path:
        return self.path / "patch-offers.json"

    @property
    def inputs(self) -> InputsRecord:
        return InputsRecord(self.path / "inputs")

    @property
    def run_lock(self) -> Path:
        return self.path / "run.lock"

    @property
    def rc_conf_lock(self) -> Path:
        return self.path / "rc.conf.lock"

    def started(self, name: str) -> Path:
        """What jail `name` was last started with (host_state.StartInputs); beside it
        `<name>.fstab`, the fstab it runs with, `<name>.etc.json`, its /etc files before a
        move's merge, and `<name>.held`, when a move to a new patch level failed and put it
        back."""
        return Path(f"{self.path}/started/{name}")  # one parse: a run asks it per jail
