"""extract: unpack a verified base.txz into the base dataset with bsdtar.

bsdtar keeps file flags, hard links and modes (Python's tarfile does not keep flags); the
archive is checked against its MANIFEST and for unsafe members first (archive.py).
An extract that was interrupted leaves a base without its stamp: the rerun destroys that
leftover (only if thinjail created it) and starts over. Re-extraction over a finished base
first removes every stamp of it, so nothing half-redone looks complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from tasks.errors import ThinjailError
from tasks.inputs import StepInputs
from tasks.runner import Runner
from tasks.steps.archive import check_archive
from tasks.steps.fetch import verify_archive
from tasks.zfs import STAMP_KEYS, Zfs

STEP = "extract"


@dataclass(frozen=True)
class ExtractInputs(StepInputs):
    """The release's archive and MANIFEST in the media dataset, unpacked into the base."""

    STEP = STEP
    STAMPED = ("version", "release", "arch")
    version: ClassVar[int] = 1
    base: str
    media: str
    archive_name: str
    manifest_name: str
    release: str
    arch: str


def extract_base(runner: Runner, zfs: Zfs, want: ExtractInputs) -> None:
    base, media = want.base, zfs.directory(want.media)
    archive, manifest = media / want.archive_name, media / want.manifest_name
    verify_archive(archive, manifest)
    check_archive(archive)
    prepare_base(zfs, base)
    root = zfs.directory(base)
    # --unlink also replaces the links of an earlier skeleton split by directories again.
    runner.run(["bsdtar", "-x", "-p", "--unlink", "-f", str(archive), "-C", str(root)],
               step=STEP)
    zfs.set_stamp(base, STEP, want.stamp, STEP)


def prepare_base(zfs: Zfs, base: str) -> None:
    """Make the base dataset ready to be filled: an unfinished one of ours (no extract
    stamp) is destroyed and made again, a finished one loses every stamp first (nothing
    half-redone looks complete), one thinjail did not create stops the step."""
    if zfs.exists(base) and zfs.stamp(base, STEP) is None:
        if not zfs.created_by_us(base):
            raise ThinjailError(f"{STEP}: {base} exists but thinjail did not create it: rename "
                                "or destroy it yourself, or choose another zfs.root")
        zfs.destroy(base, STEP)  # our own unfinished extract: start over
    if zfs.exists(base):
        zfs.clear_stamps(base, STAMP_KEYS, STEP)
    else:
        zfs.create(base, STEP)
