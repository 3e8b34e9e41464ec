"""A real ZFS pool for the tests: zfs-fuse on a sparse file (OpenZFS works the same)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from pathlib import Path

from tasks.locks import file_lock
from tasks.runner import HOST_ZFS_LOCK

# zfs-fuse keeps a dataset "busy" for seconds after writes, so `zpool destroy` at cleanup
# retries for a bounded time.
BUSY_TIMEOUT = 90.0
BUSY_SLEEP = 0.5


def zfs_available() -> str | None:
    """None when zpool/zfs work here, else why not."""
    for tool in ("zpool", "zfs"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install zfs-fuse)"
    result = subprocess.run(["zpool", "list", "-H"], capture_output=True, text=True)
    if result.returncode != 0:
        return f"`zpool list` failed: {result.stderr.strip()} (is the zfs-fuse daemon running?)"
    return None


def run(*argv: str, retry_busy: bool = False) -> str:
    """Run a zfs or zpool command; one that changes a pool holds thinjail's host-wide lock,
    as thinjail's own do, so that tests in parallel workers never change pools at once."""
    deadline = time.monotonic() + (BUSY_TIMEOUT if retry_busy else 0)
    changes = argv[1] not in ("get", "list")
    while True:
        with file_lock(HOST_ZFS_LOCK) if changes else contextlib.nullcontext():
            result = subprocess.run(argv, capture_output=True, text=True)
        if result.returncode == 0:
            return result.stdout
        if "busy" not in result.stderr or time.monotonic() > deadline:
            raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
        time.sleep(BUSY_SLEEP)


def create_pool(name: str, directory: Path, size: str = "2G") -> None:
    disk = directory / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(_bytes(size))
    run("zpool", "create", "-m", str(directory / "mnt"), name, str(disk))


def destroy_pool(name: str) -> None:
    run("zpool", "destroy", "-f", name, retry_busy=True)


def _bytes(size: str) -> int:
    units = {"M": 1 << 20, "G": 1 << 30}
    return int(size[:-1]) * units[size[-1]]


def zfs_get(dataset: str, prop: str) -> str:
    return run("zfs", "get", "-H", "-p", "-o", "value", prop, dataset).strip()


def zfs_names(root: str) -> list[str]:
    out = run("zfs", "list", "-H", "-r", "-t", "all", "-o", "name", root)
    return out.split()
