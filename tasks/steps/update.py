"""update: bring the base to the wanted patch level with freebsd-update.

The flags are those a non-interactive run needs (FREEBSD.md): the template's release rather
than the host's, the update state kept with the template, no terminal, no pager. Which patch
level is available is asked from freebsd-update itself (`fetch`, which also downloads what
`install` then uses). That is a round trip to the update servers, so the answer is kept for
`update_check` seconds (OfferRecord) rather than asked on every run.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.runner import Runner
from tasks.steps.tree import template_path, write_atomic
from tasks.zfs import Zfs

STEP = "update"
USERLAND_RE = re.compile(r'^USERLAND_VERSION="?([^"\s]+)"?', re.MULTILINE)
LEVEL_RE = re.compile(r"-(p[0-9]+)$")
# What `freebsd-update fetch` prints when it found updates / found nothing to do.
UPDATING_TO_RE = re.compile(r"as part of updating to\s+(\S+?):")
UP_TO_DATE_RE = re.compile(r"No updates needed to update system to (\S+?)\.?\s*$", re.MULTILINE)
NOTHING_TO_INSTALL = "No updates are available to install"
PAGER_ENV = {"PAGER": "cat"}


def level_of(version: str) -> str:
    """"14.3-RELEASE-p4" -> "p4"; a plain release is "p0"."""
    match = LEVEL_RE.search(version)
    return match.group(1) if match else "p0"


def patch_level(tree: Path) -> str:
    """Patch level of a FreeBSD tree, read from the USERLAND_VERSION line of
    bin/freebsd-version without running it."""
    script = tree / "bin/freebsd-version"
    try:
        match = USERLAND_RE.search(script.read_text(errors="replace"))
    except OSError as exc:
        raise ThinjailError(f"{STEP}: cannot read {script}: {exc.strerror}") from exc
    if match is None:
        raise ThinjailError(f"{STEP}: {script} has no USERLAND_VERSION line")
    return level_of(match.group(1))


def _freebsd_update(runner: Runner, base_root: Path, skeleton_root: Path, release: str,
                    *commands: str, step: str, changes: bool) -> tuple[int, str]:
    workdir = template_path(base_root, skeleton_root, "var/db/freebsd-update")
    workdir.mkdir(parents=True, exist_ok=True)
    result = runner.run(
        ["freebsd-update", "-b", str(base_root), "-d", str(workdir),
         "--currently-running", release, "--not-running-from-cron", *commands],
        step=step, env=PAGER_ENV, changes=changes, ok_codes=(0, 1, 2))
    output = result.stdout + result.stderr
    # With nothing to do, install exits non-zero (1 in 14.x, 2 per the man page).
    if result.returncode != 0 and NOTHING_TO_INSTALL not in output:
        detail = output.strip().splitlines()[-3:]
        raise ThinjailError(f"{step}: freebsd-update on {base_root} failed with exit code "
                            f"{result.returncode}: {' / '.join(detail)}")
    return result.returncode, output


@dataclass(frozen=True)
class OfferRecord:
    """The patch level freebsd-update last offered for each release, and when it was asked."""

    path: Path
    max_age: int  # seconds an answer stays good; 0: ask on every run

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def fresh(self, release: str) -> tuple[str, float] | None:
        """(level, when asked) if asked less than max_age seconds ago."""
        entry = self._read().get(release)
        if not isinstance(entry, dict):
            return None
        level, asked = entry.get("level"), entry.get("asked")
        if (isinstance(level, str) and isinstance(asked, (int, float))
                and 0 <= time.time() - asked < self.max_age):
            return level, asked
        return None

    def record(self, release: str, level: str) -> None:
        data = self._read()
        data[release] = {"level": level, "asked": round(time.time(), 3)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def available_patch(runner: Runner, base_root: Path, skeleton_root: Path, release: str) -> str:
    """The patch level freebsd-update would bring the base to now."""
    _, output = _freebsd_update(runner, base_root, skeleton_root, release, "fetch",
                                step="update check", changes=False)
    match = UPDATING_TO_RE.search(output) or UP_TO_DATE_RE.search(output)
    if match is None:
        raise ThinjailError(f"update check: cannot tell the patch level from freebsd-update's "
                            f"output: {' / '.join(output.strip().splitlines()[-3:])}")
    return level_of(match.group(1))


def update_base(runner: Runner, zfs: Zfs, offers: OfferRecord, base: str, skeleton: str,
                release: str, patch: str, stamp: str) -> str:
    """Run freebsd-update on the base unless it already has the pinned patch level; record
    the resulting level in the base's `thinjail:patch` and return it. With `patch: latest`
    that level is what freebsd-update offers now, and is recorded as such."""
    root, skeleton_root = zfs.directory(base), zfs.directory(skeleton)
    if patch != patch_level(root):
        _freebsd_update(runner, root, skeleton_root, release, "fetch", "install", step=STEP,
                        changes=True)
    level = patch_level(root)
    if patch != "latest" and level != patch:
        raise ThinjailError(f"{STEP}: the base of {release} is at {level}, but the config pins "
                            f"{patch}: freebsd-update only installs the latest patch level, so "
                            "pin that or use `patch: latest`")
    if patch == "latest":  # `fetch install` brought it to what is on offer now
        offers.record(release, level)
    zfs.set_stamp(base, "patch", level, STEP)
    zfs.set_stamp(base, "update", stamp, STEP)
    return level
