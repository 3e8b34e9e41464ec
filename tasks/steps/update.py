"""update: bring the base to the wanted patch level with freebsd-update.

The flags are those a non-interactive run needs (FREEBSD.md): the template's release rather
than the host's, no terminal, no pager, and a work directory of the release's own under the
media dataset, so that no clone of the template carries freebsd-update's downloads.

`fetch` and `install` are two calls. freebsd-update's answer to `fetch` is the level the
base is at once installed: "updating to 14.4-RELEASE-p3" or "No updates needed to update
system to 14.4-RELEASE-p3". A patch that touched only the kernel moves that level ahead of
the base's USERLAND_VERSION (base.txz has no kernel), so that answer, not the tree, is the
base's patch level (`thinjail:patch`); the tree's own level is kept as `thinjail:installed`,
which changes only when files did. Past a release's end of life, `fetch` still fetches but
warns and exits 1 (its `fetch_warn_eol || return 1`): that is recorded as `thinjail:eol` and
reported, and what was fetched is installed.

Asking which level is on offer is a round trip to the update servers, so the answer is kept
for `update_check` seconds (OfferRecord) rather than asked on every run.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tasks.config import host_machine, machine_of
from tasks.errors import ThinjailError, last_lines
from tasks.files import existing_dir_beneath, make_dirs_beneath
from tasks.host_state import Offer, OfferRecord
from tasks.inputs import StepInputs
from tasks.runner import Runner
from tasks.steps.certs import repair_tree
from tasks.steps.levels import make_level, skeleton_mounted
from tasks.steps.pkgbase import PkgbaseInputs, ask_upgrade, upgrade
from tasks.steps.tree import MOUNT_DIR
from tasks.zfs import Zfs

STEP = "update"
USERLAND_RE = re.compile(r'^USERLAND_VERSION="?([^"\s]+)"?', re.MULTILINE)
LEVEL_RE = re.compile(r"-(p[0-9]+)$")
# What `freebsd-update fetch` prints when it found updates / found nothing to do / the
# release is past its end of life.
UPDATING_TO_RE = re.compile(r"as part of updating to\s+(\S+?):")
UP_TO_DATE_RE = re.compile(r"No updates needed to update system to (\S+?)\.?\s*$", re.MULTILINE)
PASSED_EOL_RE = re.compile(r"^WARNING: FreeBSD \S+ HAS PASSED ITS END-OF-LIFE DATE\.",
                           re.MULTILINE)
EOL_SINCE_RE = re.compile(r"^Any security issues discovered after (.+?)\s*$", re.MULTILINE)
APPROACHING_EOL_RE = re.compile(r"^WARNING: FreeBSD \S+ is approaching its End-of-Life date\."
                                r"[^\n]*\n[^\n]*\n[^\n]*", re.MULTILINE)
PAGER_ENV = {"PAGER": "cat"}


def level_of(version: str) -> str:
    """"14.3-RELEASE-p4" -> "p4"; a plain release is "p0"."""
    match = LEVEL_RE.search(version)
    return match.group(1) if match else "p0"


def patch_level(tree: Path) -> str:
    """Patch level of a FreeBSD tree's userland, read from the USERLAND_VERSION line of
    bin/freebsd-version without running it."""
    script = tree / "bin/freebsd-version"
    try:
        match = USERLAND_RE.search(script.read_text(errors="replace"))
    except OSError as exc:
        raise ThinjailError(f"{STEP}: cannot read {script}: {exc.strerror}") from exc
    if match is None:
        raise ThinjailError(f"{STEP}: {script} has no USERLAND_VERSION line")
    return level_of(match.group(1))


def require_host_machine(arch: str, release: str) -> None:
    """freebsd-update installs the files of the host's own architecture (`uname -m`), which
    would break a template of another one."""
    if machine_of(arch) != host_machine():
        raise ThinjailError(
            f"{STEP}: arch {arch} is not this host's architecture ({host_machine()}), and "
            f"freebsd-update always installs the host's own files: they would break the "
            f"{release} template. Update {arch} templates on a {machine_of(arch)} host, or "
            "pin a patch level the base already has (`patch: p0` for a release as published)")


def fetch_updates(runner: Runner, base_root: Path, workdir: Path, release: str, *,
                  step: str, changes: bool) -> Offer:
    argv = ["freebsd-update", "-b", str(base_root), "-d", str(workdir), "--currently-running",
            release, "--not-running-from-cron", "fetch"]
    result = runner.run(argv, step=step, env=PAGER_ENV, changes=changes, ok_codes=(0, 1))
    output = result.stdout + result.stderr
    passed_eol = PASSED_EOL_RE.search(output)
    tail = last_lines(output)
    if result.returncode != 0 and passed_eol is None:
        raise ThinjailError(f"{step}: `freebsd-update ... fetch` on {base_root} failed with "
                            f"exit code {result.returncode}: {tail}")
    updating = UPDATING_TO_RE.search(output)
    answer = updating or UP_TO_DATE_RE.search(output)
    if answer is None:
        raise ThinjailError(f"{step}: cannot tell the patch level from freebsd-update's "
                            f"output: {tail}")
    since = EOL_SINCE_RE.search(output)
    eol = (since.group(1) if since else "passed") if passed_eol else None
    approaching = APPROACHING_EOL_RE.search(output)
    if approaching:
        print(f"{step}: {release}: {' '.join(approaching.group(0).split())}")
    return Offer(level_of(answer.group(1)), pending=updating is not None, eol=eol)


def eol_warning(release: str, since: str) -> str:
    return (f"{release} has passed its end of life: no security fixes after {since}. Move its "
            "jails to a supported release (README \"Releases and patch levels\").")


@dataclass(frozen=True)
class UpdateInputs(StepInputs):
    """One release's base as the update step and its check see it."""

    STEP = STEP
    STAMPED = ("version", "extract", "patch")
    version: ClassVar[int] = 1
    base: str  # the current level's
    skeleton: str
    levels: str  # the dataset that holds the release's later levels
    new_level: str | None  # the level to make beside the current one (ReleasePlan)
    media: str  # freebsd-update's work directory lives here, one per release
    release: str
    arch: str
    extract: str
    patch: str  # "latest" or a pin such as "p3"
    packages: PkgbaseInputs | None = None  # a pkgbase base: `pkg upgrade`, not freebsd-update

    def workdir(self, zfs: Zfs) -> Path:
        """freebsd-update's work directory (made if missing)."""
        return make_dirs_beneath(zfs.directory(self.media), f"freebsd-update/{self.release}",
                                 STEP)

    def ask(self, runner: Runner, zfs: Zfs) -> Offer:
        """The level freebsd-update would bring the base to now, and whether it has files
        to install (a question: installs nothing). A split base is asked with its skeleton
        mounted read-only where its links lead, for a while: a patch to etc alone counts."""
        root = zfs.directory(self.base)
        with skeleton_mounted(runner, zfs.directory(self.skeleton), root, "update check",
                              read_only=True) if is_split(root) else contextlib.nullcontext():
            if self.packages is not None:
                return ask_upgrade(runner, zfs, self.packages, root, "update check")
            require_host_machine(self.arch, self.release)
            return fetch_updates(runner, root, self.workdir(zfs), self.release,
                                 step="update check", changes=False)

    @property
    def tool(self) -> str:
        return "pkg upgrade" if self.packages is not None else "freebsd-update"

    def fetch(self, runner: Runner, zfs: Zfs, root: Path) -> Offer:
        """Ask what the tree at root would be brought to, fetching what that takes."""
        if self.packages is not None:
            return ask_upgrade(runner, zfs, self.packages, root, STEP)
        require_host_machine(self.arch, self.release)
        return fetch_updates(runner, root, self.workdir(zfs), self.release, step=STEP,
                             changes=True)

    def install(self, runner: Runner, zfs: Zfs, root: Path) -> None:
        """Install what fetch found: `pkg upgrade`, or `freebsd-update install`."""
        if self.packages is not None:
            upgrade(runner, zfs, self.packages, root, STEP)
            return
        runner.run(["freebsd-update", "-b", str(root), "-d", str(self.workdir(zfs)),
                    "--currently-running", self.release, "--not-running-from-cron", "install"],
                   step=STEP, env=PAGER_ENV)


def is_split(base_root: Path) -> bool:
    """The skeleton split ran: the base has the directory the skeleton is mounted on."""
    return existing_dir_beneath(base_root, MOUNT_DIR, STEP) is not None


def update_base(runner: Runner, zfs: Zfs, offers: OfferRecord, target: UpdateInputs) -> str:
    """Bring the release to the wanted patch level (the pinned one, or with `patch: latest`
    what freebsd-update offers now) and record it; return it. A base not split yet (the
    first build: no jail mounts it) is updated in place; a split one is never changed:
    `target.new_level` is made beside it (tasks/steps/levels.py), and a level with nothing
    to install (kernel-only) is only recorded."""
    base, patch, release = target.base, target.patch, target.release
    root = zfs.directory(base)
    level = zfs.stamp(base, "patch") or patch_level(root)
    eol = zfs.stamp(base, "eol")
    if patch == "latest" or patch != level:
        if target.new_level:
            base, offer = _make_new_level(runner, zfs, target)
            root = zfs.directory(base)
        elif is_split(root):
            offer = target.ask(runner, zfs)
            _check_pin(offer, patch, release, target.tool)
            if offer.pending:
                raise ThinjailError(f"{STEP}: freebsd-update now has files to install for "
                                    f"{release} {offer.level}, which it did not have when "
                                    "this run began: rerun to make that level")
        else:
            offer = target.fetch(runner, zfs, root)
            _check_pin(offer, patch, release, target.tool)
            if offer.pending:
                zfs.clear_stamps(base, ("update",), STEP)  # a half-done install reruns this
                target.install(runner, zfs, root)
        level, eol = offer.level, offer.eol
        if patch == "latest":
            offers.record(release, Offer(level, eol=eol))
    if eol:
        print(f"{STEP}: warning: {eol_warning(release, eol)}")
    # The level of the files the base holds is what a restart of its jails follows.
    stamps = {"eol": eol, "patch": level, "installed": patch_level(root)}
    for key, value in stamps.items():
        if value is None:
            zfs.clear_stamps(base, (key,), STEP)
        elif zfs.stamp(base, key) != value:
            zfs.set_stamp(base, key, value, STEP)
    zfs.set_stamp(base, STEP, target.stamp, STEP)  # last: a new level is done with it
    return level


def _make_new_level(runner: Runner, zfs: Zfs, target: UpdateInputs) -> tuple[str, Offer]:
    """Clone the current level, patch the clones with the new skeleton mounted where the
    new base's links lead, and make the new base read-only; return it and the offer."""
    level = str(target.new_level)
    base, skeleton = make_level(runner, zfs, STEP, base=target.base, skeleton=target.skeleton,
                                levels=target.levels, level=level)
    root = zfs.directory(base)
    with skeleton_mounted(runner, zfs.directory(skeleton), root, STEP):
        # Names the new skeleton's snapshot, which new jails clone.
        zfs.set_stamp(skeleton, "patched", level, STEP)
        offer = target.fetch(runner, zfs, root)
        _check_pin(offer, target.patch, target.release, target.tool)
        if offer.level != level:
            raise ThinjailError(f"{STEP}: freebsd-update offered {target.release} {level} when "
                                f"this run began, and now {offer.level}: rerun")
        if offer.pending:
            target.install(runner, zfs, root)
    repair_tree(zfs.directory(skeleton))
    zfs.set_readonly(base, STEP)
    return base, offer


def _check_pin(offer: Offer, patch: str, release: str, tool: str) -> None:
    if patch not in ("latest", offer.level):
        raise ThinjailError(f"{STEP}: {tool} brings {release} to {offer.level}, but "
                            f"the config pins {patch}: it only installs the latest patch "
                            "level, so pin that or use `patch: latest`; nothing was installed")

