"""Hostile archives are refused before anything lands in the template."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tasks.errors import ThinjailError
from tasks.steps.archive import check_archive
from tests.support.host import RELEASE, Host
from tests.support.mirror import Mirror

pytestmark = pytest.mark.builds_templates  # about building them from the mirror


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


HOSTILE = {
    "dotdot": (member("etc/../../escape"), "has a '..' path"),
    "absolute": (member("/etc/passwd"), "has an absolute path"),
    "symlink out": (member("etc/evil", tarfile.SYMTYPE, "../../../../etc/shadow"),
                    "is a symlink to ../../../../etc/shadow, which leads out"),
    "hard link out": (member("etc/evil", tarfile.LNKTYPE, "../outside"),
                      "is a hard link to ../outside, outside the template"),
    "hard link absolute": (member("etc/evil", tarfile.LNKTYPE, "/etc/master.passwd"),
                           "is a hard link to /etc/master.passwd"),
    "device node": (member("dev/mem", tarfile.CHRTYPE), "is a device node"),
}


def archive_with(path: Path, extra: tarfile.TarInfo) -> Path:
    """A small FreeBSD-like tree plus one hostile member, xz-compressed."""
    with tarfile.open(path, "w:xz") as tar:
        for info in (member("bin", tarfile.DIRTYPE), member("etc", tarfile.DIRTYPE),
                     member("etc/termcap", tarfile.SYMTYPE, "/usr/share/misc/termcap"),
                     member("etc/ssl/certs/a.0", tarfile.SYMTYPE,
                            "../../../usr/share/certs/trusted/a.pem"), extra):
            tar.addfile(info, io.BytesIO(b"") if info.isreg() else None)
    return path


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_unsafe_member_is_named(tmp_path: Path, case: str) -> None:
    info, problem = HOSTILE[case]
    with pytest.raises(ThinjailError, match=f"member {info.name!r} {problem}"):
        check_archive(archive_with(tmp_path / "base.txz", info))


def test_freebsd_layout_passes(tmp_path: Path) -> None:
    benign = member("usr/share/certs/trusted/a.pem")
    assert check_archive(archive_with(tmp_path / "base.txz", benign)) == 5


@pytest.mark.parametrize("case", ["dotdot", "symlink out", "device node"])
def test_doit_refuses_a_hostile_release(host: Host, mirror: Mirror, case: str) -> None:
    info, problem = HOSTILE[case]
    release_dir = mirror.root / f"hostile-{case.replace(' ', '-')}/amd64/amd64/{RELEASE}"
    release_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_with(release_dir / "base.txz", info)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    (release_dir / "MANIFEST").write_text(f'base.txz\t{sha}\t5\tbase\t"Base"\ton\n')
    host.overrides["mirror"] = f"{mirror.url}/hostile-{case.replace(' ', '-')}"
    run = host.doit("run", "jail:pg-1")
    assert run.returncode != 0
    assert problem in run.output and "nothing was extracted" in run.output
    assert not host.exists(f"templates/{RELEASE}-base")
    assert not any("bsdtar" in argv for argv in run.changing_commands())
