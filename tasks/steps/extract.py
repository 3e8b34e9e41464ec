"""extract: unpack a verified base.txz into the base dataset with bsdtar.

bsdtar keeps file flags, hard links and modes (Python's tarfile does not keep flags).
Re-extraction first removes every stamp of the base, so nothing half-redone looks complete.
"""

from __future__ import annotations

from pathlib import Path

from tasks.runner import Runner
from tasks.steps.fetch import verify_archive
from tasks.zfs import STAMP_KEYS, Zfs

STEP = "extract"


def extract_base(runner: Runner, zfs: Zfs, base: str, archive: Path, manifest: Path,
                 stamp: str) -> None:
    verify_archive(archive, manifest)
    if zfs.exists(base):
        zfs.clear_stamps(base, STAMP_KEYS, STEP)
    else:
        zfs.create(base, STEP)
    root = zfs.mountpoint(base)
    # --unlink also replaces the links of an earlier skeleton split by directories again.
    runner.run(["bsdtar", "-x", "-p", "--unlink", "-f", str(archive), "-C", str(root)],
               step=STEP)
    zfs.set_stamp(base, "extract", stamp, STEP)
