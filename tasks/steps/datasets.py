"""Dataset steps: the parent datasets, the skeleton snapshot and a jail's clone.

None of them ever destroys or replaces an existing dataset: a jail's clone holds its data.
"""

from __future__ import annotations

from collections.abc import Iterable

from tasks.zfs import Zfs


def create_datasets(zfs: Zfs, names: Iterable[str]) -> None:
    for name in [n for n in names if not zfs.exists(n)]:  # one listing, then the creates
        zfs.create(name, "host")


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
