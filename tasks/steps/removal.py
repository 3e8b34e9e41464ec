"""Removing a jail is explicit and reversible until purged.

`destroy_jail` stops the jail, moves its dataset into `<root>/trash/<name>-<time>` (a rename:
the data stays, `zfs rename` brings it back), and then removes its rc.conf entries (jail_list,
jail_<name>_conf) and its conf, fstab and root directory. `purge` really destroys trash
entries. Only datasets that thinjail created are touched.
"""

from __future__ import annotations

import time
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.host_state import RunningJails
from tasks.plan import JailFiles
from tasks.runner import Runner
from tasks.steps.rcconf import unregister_for_boot
from tasks.steps.render import is_managed
from tasks.steps.running import stop_jail, wait_until_gone
from tasks.zfs import Zfs

STEP = "destroy"


def destroy_jail(runner: Runner, zfs: Zfs, running: RunningJails, *, files: JailFiles,
                 trash_root: str, record: Path, rc_conf: Path, lock: Path) -> None:
    name, container = files.name, files.container
    if zfs.exists(container) and not zfs.created_by_us(container):
        raise ThinjailError(f"{STEP}: {container} was not created by thinjail: not touching it")
    stop_jail(runner, running, files.conf, record, name)
    wait_until_gone(runner, name, STEP)
    if zfs.exists(container):
        if not zfs.exists(trash_root):
            zfs.create(trash_root, STEP)
        trash = f"{trash_root}/{name}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        zfs.rename(container, trash, STEP)
        print(f"{name}: dataset moved to {trash}; `zfs rename {trash} {container}` restores "
              f"it, `doit purge` destroys it")
    unregister_for_boot(runner, rc_conf, lock, name)
    for path in (files.conf, files.fstab):
        if is_managed(path):
            path.unlink()
    if files.jail_root.is_dir():
        files.jail_root.rmdir()  # empty once the jail's nullfs mounts are gone


def purge(zfs: Zfs, entries: list[str]) -> None:
    """Destroy trash entries for good (with their snapshots)."""
    for entry in entries:
        if not zfs.created_by_us(entry):
            raise ThinjailError(f"purge: {entry} was not created by thinjail: not touching it")
        zfs.destroy(entry, "purge", recursive=True)
