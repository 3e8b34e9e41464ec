"""update: bring the base to the wanted patch level with freebsd-update.

The flags are those a non-interactive run needs (FREEBSD.md): the template's release rather
than the host's, the update state kept with the template, no terminal, no pager.
"""

from __future__ import annotations

import re
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.runner import Runner
from tasks.steps.tree import template_path
from tasks.zfs import Zfs

STEP = "update"
USERLAND_RE = re.compile(r'^USERLAND_VERSION="?([^"\s]+)"?', re.MULTILINE)
NOTHING_TO_INSTALL = "No updates are available to install"


def patch_level(tree: Path) -> str:
    """Patch level of a FreeBSD tree ("p0" for a plain release), read from the
    USERLAND_VERSION line of bin/freebsd-version without running it."""
    script = tree / "bin/freebsd-version"
    try:
        match = USERLAND_RE.search(script.read_text(errors="replace"))
    except OSError as exc:
        raise ThinjailError(f"{STEP}: cannot read {script}: {exc.strerror}") from exc
    if match is None:
        raise ThinjailError(f"{STEP}: {script} has no USERLAND_VERSION line")
    level = re.search(r"-(p[0-9]+)$", match.group(1))
    return level.group(1) if level else "p0"


def update_base(runner: Runner, zfs: Zfs, base: str, skeleton: str, release: str,
                patch: str, stamp: str) -> str:
    """Run freebsd-update on the base unless it already has the pinned patch level; record
    the resulting level in the base's `thinjail:patch` and return it."""
    root = zfs.mountpoint(base)
    if patch != patch_level(root):
        workdir = template_path(root, zfs.mountpoint(skeleton), "var/db/freebsd-update")
        workdir.mkdir(parents=True, exist_ok=True)
        result = runner.run(
            ["freebsd-update", "-b", str(root), "-d", str(workdir),
             "--currently-running", release, "--not-running-from-cron", "fetch", "install"],
            step=STEP, env={"PAGER": "cat"}, ok_codes=(0, 1, 2))
        # With nothing to do, install exits non-zero (1 in 14.x, 2 per the man page).
        if result.returncode != 0 and NOTHING_TO_INSTALL not in result.stdout + result.stderr:
            detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-3:]
            raise ThinjailError(f"{STEP}: freebsd-update on {root} failed with exit code "
                                f"{result.returncode}: {' / '.join(detail)}")
    level = patch_level(root)
    if patch != "latest" and level != patch:
        raise ThinjailError(f"{STEP}: the base of {release} is at {level}, but the config pins "
                            f"{patch}: freebsd-update only installs the latest patch level, so "
                            "pin that or use `patch: latest`")
    zfs.set_stamp(base, "patch", level, STEP)
    zfs.set_stamp(base, "update", stamp, STEP)
    return level
