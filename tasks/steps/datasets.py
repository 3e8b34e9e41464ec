"""Dataset steps: the parent datasets, the skeleton snapshot and a jail's clone.

None of them ever destroys or replaces an existing dataset: a jail's clone holds its data.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from tasks.errors import ThinjailError
from tasks.runner import Runner
from tasks.zfs import Zfs

PRIVATE_MODE = 0o700


def is_private(zfs: Zfs, name: str) -> bool:
    """Only root may enter the dataset's directory."""
    try:
        mode = os.stat(zfs.directory(name)).st_mode
    except OSError:
        return False
    return stat.S_IMODE(mode) == PRIVATE_MODE


def create_datasets(zfs: Zfs, names: Iterable[str], private: Iterable[str]) -> None:
    """Create the parent datasets that are missing, mount the datasets of ours a killed
    command left unmounted, and keep the directories holding jail roots and clones out of
    unprivileged users' reach (jail(8) NOTES)."""
    for name in [n for n in names if not zfs.exists(n)]:  # one listing, then the creates
        zfs.create(name, "host")
    for name in zfs.unmounted_ours():  # parents first
        zfs.mount(name, "host")
    for name in private:
        if not is_private(zfs, name):
            os.chmod(zfs.directory(name), PRIVATE_MODE)


def snapshot_skeleton(zfs: Zfs, snapshot: str) -> None:
    """Snapshot the skeleton under a name no earlier snapshot has (it carries a digest of
    the skeleton's content), so older snapshots with clones are never touched."""
    if not zfs.exists(snapshot):
        zfs.snapshot(snapshot, "snapshot")


def clone_jail(zfs: Zfs, snapshot: str, container: str) -> None:
    """Clone the jail's dataset from the skeleton snapshot, once: an existing dataset is the
    jail's own and keeps its origin whatever changed upstream."""
    if not zfs.exists(container):
        zfs.clone(snapshot, container, "clone")


def snapshots_oldest_first(runner: Runner, dataset: str, step: str) -> list[str]:
    """The dataset's snapshots in the order they were taken (the listing does not know
    which came last; `zfs list -s createtxg` does)."""
    return runner.run(["zfs", "list", "-H", "-o", "name", "-t", "snapshot", "-s", "createtxg",
                       "-d", "1", dataset], step=step, changes=False).stdout.split()


def newest_snapshot(runner: Runner, dataset: str, prefix: str) -> str:
    """The dataset's newest snapshot whose name starts with `prefix`."""
    found = [name for name in snapshots_oldest_first(runner, dataset, "clone")
             if name.startswith(f"{dataset}@{prefix}")]
    if not found:
        raise ThinjailError(f"clone: {dataset} has no @{prefix}* snapshot to clone a jail from")
    return found[-1]
