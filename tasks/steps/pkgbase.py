"""pkgbase: a release's base built from FreeBSD's base packages instead of base.txz.

    pkg --rootdir <base> --repo-conf-dir <media>/pkgbase/<release>/repos \
        -o ABI=FreeBSD:15:amd64 -o OSVERSION=1501000 \
        -o PKG_DBDIR=<base>/usr/share/pkgbase/db -o PKG_CACHEDIR=<media>/pkgbase/<release>/cache \
        install -y FreeBSD-set-minimal-jail

thinjail writes the repository's conf itself (FreeBSD-base, `<mirror>/${ABI}/
base_release_<minor>`, signed by the fingerprints in /usr/share/keys/pkgbase-<major>), and
never reads the host's /etc/pkg or /usr/local/etc/pkg/repos. An unsigned repository is used
only when the config says `signature: none`.

The base's package database stays with the base: thinjail keeps it in the base at
/usr/share/pkgbase/db (PKG_DBDIR; pkg prefixes only its built-in defaults with --rootdir,
so thinjail passes the host path), not in /var/db/pkg, which the skeleton split moves into
every jail's clone, where a copy would drift from the base it describes. After the split a
link in the base's own `skeleton/` directory (`skeleton/var/db/pkg -> ../../../usr/share/
pkgbase/db`) makes plain `pkg --rootdir <base> info` find it on the host, while inside a jail
the jail's clone is mounted over that directory: its /var/db/pkg holds only its own packages.
Downloaded packages are cached in the media dataset (PKG_CACHEDIR), not in the base's
/var/cache/pkg, which the split would hand to every jail.

The level of a pkgbase base is the version of its FreeBSD-runtime package (15.1p2 is p2).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tasks.config import MIRROR_ARCH_DIRS, release_major
from tasks.errors import ThinjailError, last_lines
from tasks.files import existing_dir_beneath, make_dirs_beneath, write_atomic
from tasks.host_state import Offer
from tasks.inputs import StepInputs
from tasks.runner import Runner
from tasks.steps.extract import prepare_base
from tasks.zfs import Zfs

STEP = "extract"
REPO_NAME = "FreeBSD-base"
DBDIR = "/usr/share/pkgbase/db"  # the base's package database, below its root
RUNTIME = "FreeBSD-runtime"  # its version is the base's level
VERSION_LEVEL_RE = re.compile(r"^[0-9]+\.[0-9]+(?:p([0-9]+))?")
UPGRADE_RE = re.compile(r"^\s+(\S+): (\S+) -> (\S+)\s*$", re.MULTILINE)


def abi(release: str, arch: str) -> str:
    """pkg's ABI string: FreeBSD:<major>:<MACHINE_ARCH> (aarch64 for arm64)."""
    return f"FreeBSD:{release_major(release)}:{MIRROR_ARCH_DIRS[arch].split('/')[1]}"


def osversion(release: str) -> int:
    """__FreeBSD_version of a release's first build: 15.1 -> 1501000."""
    major, minor = release.split("-", 1)[0].split(".")
    return int(major) * 100000 + int(minor) * 1000


def level_of_version(version: str) -> str:
    """A FreeBSD-runtime version as a patch level: 15.1p2 -> p2, 15.1 -> p0."""
    match = VERSION_LEVEL_RE.match(version)
    if match is None:
        raise ThinjailError(f"update: cannot tell the patch level from {RUNTIME} {version}")
    return f"p{match.group(1) or 0}"


@dataclass(frozen=True)
class PkgbaseInputs(StepInputs):
    """A release's base installed from its base packages (what `extract` makes for
    `source: pkgbase`)."""

    STEP = STEP
    # What the tree is made of; where the packages come from (mirror, keys) is transport,
    # as for base.txz: an image of it lands on a host with another mirror as it is.
    STAMPED = ("version", "release", "arch", "package_set")
    version: ClassVar[int] = 1
    base: str
    media: str
    release: str
    arch: str
    package_set: str  # FreeBSD-set-minimal-jail or FreeBSD-set-base-jail
    url: str  # the repository, with ${ABI} for pkg to expand
    signature: str  # fingerprints or none
    keys: str  # the fingerprints directory (trusted/, revoked/)

    def conf_dir(self, zfs: Zfs) -> Path:
        return self.work_dir(zfs, "repos")

    def conf_text(self) -> str:
        lines = [f'  url: "{self.url}",',
                 f'  mirror_type: "{"srv" if self.url.startswith("pkg+") else "none"}",',
                 f'  signature_type: "{self.signature}",']
        if self.signature == "fingerprints":
            lines.append(f'  fingerprints: "{self.keys}",')
        return "# Written by thinjail: the repository of this release's base packages.\n" \
            f"{REPO_NAME}: {{\n" + "\n".join(lines) + "\n  enabled: yes\n}\n"

    def work_dir(self, zfs: Zfs, name: str) -> Path:
        """The release's pkg files in the media dataset: repos/, cache/, question-db/."""
        return zfs.directory(self.media) / "pkgbase" / self.release / name

    def pkg(self, zfs: Zfs, root: Path, *command: str, dbdir: Path | None = None) -> list[str]:
        """A pkg command on the tree at root, with this release's repository and ABI, the
        tree's own database (or `dbdir`) and the release's cache (host paths: pkg does not
        prefix a value given with -o with the root)."""
        return ["pkg", "--rootdir", str(root), "--repo-conf-dir", str(self.conf_dir(zfs)),
                "-o", f"ABI={abi(self.release, self.arch)}",
                "-o", f"OSVERSION={osversion(self.release)}",
                "-o", f"PKG_DBDIR={dbdir or f'{root}{DBDIR}'}",
                "-o", f"PKG_CACHEDIR={self.work_dir(zfs, 'cache')}", *command]


def write_repo_conf(zfs: Zfs, want: PkgbaseInputs) -> None:
    """Write the repository conf the release's pkg commands use; with fingerprints, the
    keys must be there (pkg's own message would not say where they are expected)."""
    if want.signature == "fingerprints" and not Path(want.keys, "trusted").is_dir():
        raise ThinjailError(
            f"fetch: {want.keys}/trusted does not exist: pkg checks the signature of the "
            f"{want.release} base packages against the fingerprints there. Install them (a "
            f"FreeBSD {release_major(want.release)} host has them), set pkgbase_keys to "
            "where they are, or, for an unsigned repository you trust, signature: none")
    conf_dir = make_dirs_beneath(zfs.directory(want.media), f"pkgbase/{want.release}/repos",
                                 "fetch")
    write_atomic(conf_dir / f"{REPO_NAME}.conf", want.conf_text().encode())


def install_base(runner: Runner, zfs: Zfs, want: PkgbaseInputs) -> None:
    """Install the release's package set into the base dataset (prepared as for base.txz);
    its extract stamp is written last."""
    base = want.base
    prepare_base(zfs, base)
    write_repo_conf(zfs, want)  # the conf a reused media dataset has may be older
    runner.run(want.pkg(zfs, zfs.directory(base), "install", "-y", want.package_set),
               step=STEP)
    zfs.set_stamp(base, STEP, want.stamp, STEP)


def runtime_level(runner: Runner, zfs: Zfs, want: PkgbaseInputs, root: Path,
                  step: str) -> str:
    """The level of the tree at root: its FreeBSD-runtime's version."""
    result = runner.run(want.pkg(zfs, root, "query", "%v", RUNTIME), step=step,
                        changes=False, ok_codes=(0, 1))
    if result.returncode != 0 or not result.stdout.strip():
        raise ThinjailError(f"{step}: {root} has no {RUNTIME} package: it is not a pkgbase "
                            "base")
    return level_of_version(result.stdout.strip())


def ask_upgrade(runner: Runner, zfs: Zfs, want: PkgbaseInputs, root: Path,
                step: str) -> Offer:
    """What `pkg upgrade` would bring the tree at root to (a dry run: exit 1 when it would
    do something, 0 when the packages are up to date). It is asked on a copy of the tree's
    database in the media dataset: fetching the catalogue writes to the database, and a
    base that jails mount is never written (a done level is read-only, where pkg would not
    fetch at all and answer from an old catalogue)."""
    question_db = want.work_dir(zfs, "question-db")
    copy_database(root, question_db, step)
    result = runner.run(want.pkg(zfs, root, "upgrade", "-n", dbdir=question_db), step=step,
                        changes=False, ok_codes=(0, 1))
    output = result.stdout + result.stderr
    upgrades = {name: new for name, _, new in UPGRADE_RE.findall(output)}
    if result.returncode == 1 and not upgrades:
        raise ThinjailError(f"{step}: `pkg ... upgrade -n` on {root} failed: "
                            f"{last_lines(output)}")
    current = runtime_level(runner, zfs, want, root, step)
    level = level_of_version(upgrades[RUNTIME]) if RUNTIME in upgrades else current
    return Offer(level, pending=bool(upgrades))


def copy_database(root: Path, dest: Path, step: str) -> None:
    """Copy the tree's package database (its regular files, reached without following
    links: the tree is untrusted) over dest, keeping dest's fetched catalogue."""
    source = existing_dir_beneath(root, DBDIR.lstrip("/"), step)
    if source is None:
        raise ThinjailError(f"{step}: {root} has no package database at {DBDIR}: it is not "
                            "a pkgbase base thinjail built")
    dest.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(source):
        if entry.is_file(follow_symlinks=False):
            write_atomic(dest / entry.name, Path(entry.path).read_bytes())


def upgrade(runner: Runner, zfs: Zfs, want: PkgbaseInputs, root: Path, step: str) -> None:
    runner.run(want.pkg(zfs, root, "upgrade", "-y"), step=step)
