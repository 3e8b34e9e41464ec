"""Live up-to-date checks for doit's `uptodate`: each looks at the host (ZFS state, files),
never only at doit's state file, and says in its repr what it checks (`doit info` shows it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.steps.rcconf import jail_list, missing_settings
from tasks.steps.start import RunningJails
from tasks.zfs import Zfs


@dataclass
class StampIs:
    zfs: Zfs
    dataset: str
    key: str
    expected: str

    def __call__(self) -> bool:
        return self.zfs.stamp(self.dataset, self.key) == self.expected

    def __repr__(self) -> str:
        return f"<{self.dataset} has thinjail:{self.key}={self.expected}>"


@dataclass
class DatasetsExist:
    zfs: Zfs
    names: tuple[str, ...]

    def __call__(self) -> bool:
        return all(self.zfs.exists(name) for name in self.names)

    def __repr__(self) -> str:
        return f"<datasets exist: {', '.join(self.names)}>"


@dataclass
class FilesInDataset:
    """Files in a dataset whose mountpoint may only be known once it exists."""

    zfs: Zfs
    dataset: str
    names: tuple[str, ...]

    def __call__(self) -> bool:
        return self.zfs.exists(self.dataset) and all(
            (self.zfs.mountpoint(self.dataset) / name).is_file() for name in self.names)

    def __repr__(self) -> str:
        return f"<files in {self.dataset}: {', '.join(self.names)}>"


@dataclass
class RcSettings:
    rc_conf: Path
    wanted: Mapping[str, str]

    def __call__(self) -> bool:
        return not missing_settings(self.rc_conf, self.wanted)

    def __repr__(self) -> str:
        settings = " ".join(f"{k}={v}" for k, v in self.wanted.items())
        return f"<{self.rc_conf} sets {settings}>"


@dataclass
class InJailList:
    rc_conf: Path
    name: str

    def __call__(self) -> bool:
        return self.name in jail_list(self.rc_conf)

    def __repr__(self) -> str:
        return f"<jail_list in {self.rc_conf} names {self.name}>"


@dataclass
class JailRunning:
    running: RunningJails
    name: str

    def __call__(self) -> bool:
        return self.name in self.running.names()

    def __repr__(self) -> str:
        return f"<jail {self.name} is running (jls)>"
