"""fetch against a local mirror: cache reuse, resume with Range, clear errors, file://."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

from tasks.errors import ThinjailError
from tasks.steps.fetch import fetch_release, is_verified, sha256_of
from tests.support.host import RELEASE, Host
from tests.support.mirror import Mirror

pytestmark = pytest.mark.builds_templates  # about building them from the mirror

RELEASE_DIR = f"/amd64/amd64/{RELEASE}"


@pytest.fixture
def media(tmp_path: Path, mirror: Mirror) -> Path:
    mirror.requests.clear()
    mirror.faults.clear()
    path = tmp_path / "media"
    path.mkdir()
    return path


def served(mirror: Mirror, name: str) -> Path:
    return mirror.root / RELEASE_DIR.lstrip("/") / name


def fetch(mirror: Mirror, media: Path, **kwargs: object) -> str:
    return fetch_release(f"{mirror.url}{RELEASE_DIR}", media, "base.txz", "MANIFEST",
                         **kwargs)  # type: ignore[arg-type]


def test_download_is_verified_and_recorded(mirror: Mirror, media: Path) -> None:
    sha = fetch(mirror, media)
    assert sha == sha256_of(served(mirror, "base.txz")).hexdigest()
    assert sorted(p.name for p in media.iterdir()) == ["MANIFEST", "base.txz",
                                                       "base.txz.verified"]
    assert is_verified(media / "base.txz", media / "MANIFEST")
    os.utime(media / "base.txz", ns=(1, 1))  # replaced behind our back: verify again
    assert not is_verified(media / "base.txz", media / "MANIFEST")


def test_cached_archive_is_reused_without_any_download(mirror: Mirror, media: Path) -> None:
    for name in ("base.txz", "MANIFEST"):  # e.g. copied onto an offline host
        shutil.copy(served(mirror, name), media / name)
    fetch(mirror, media)
    assert mirror.requests == []
    assert is_verified(media / "base.txz", media / "MANIFEST")


def test_interrupted_download_resumes_with_range(mirror: Mirror, media: Path) -> None:
    mirror.faults[f"{RELEASE_DIR}/base.txz"] = ("cut", 100_000)
    with pytest.raises(ThinjailError, match="rerun to resume"):
        fetch(mirror, media)
    assert not (media / "base.txz").exists()  # a partial download never counts as done
    assert (media / "base.txz.part").stat().st_size == 100_000
    mirror.requests.clear()
    fetch(mirror, media)
    assert (f"{RELEASE_DIR}/base.txz", "bytes=100000-") in mirror.requests
    assert (media / "base.txz").read_bytes() == served(mirror, "base.txz").read_bytes()
    assert not (media / "base.txz.part").exists()


def test_a_part_of_another_archive_is_replaced(mirror: Mirror, media: Path) -> None:
    (media / "base.txz.part").write_bytes(b"not the start of this archive")
    fetch(mirror, media)
    ranges = [r for p, r in mirror.requests if p.endswith("base.txz")]
    assert ranges == ["bytes=29-", None]  # resumed, mismatched, downloaded whole
    assert (media / "base.txz").read_bytes() == served(mirror, "base.txz").read_bytes()


@pytest.mark.parametrize(("mirror_dir", "message"), [
    ("{url}/amd64/amd64/9.9-RELEASE", r"HTTP 404 Not Found: check `mirror`, `release` and"),
    ("http://127.0.0.1:9/x", r"cannot download http://127.0.0.1:9/x/MANIFEST: .*refused"),
    ("file:///nonexistent/x", r"cannot download file:///nonexistent/x/MANIFEST"),
])
def test_errors_are_clear_and_leave_nothing(mirror: Mirror, media: Path, mirror_dir: str,
                                            message: str) -> None:
    with pytest.raises(ThinjailError, match=message):
        fetch_release(mirror_dir.format(url=mirror.url), media, "base.txz", "MANIFEST")
    assert list(media.iterdir()) == []


def test_stalled_mirror_times_out(mirror: Mirror, media: Path) -> None:
    mirror.faults[f"{RELEASE_DIR}/base.txz"] = ("stall", 3)
    with pytest.raises(ThinjailError, match=r"no data for 0.5 s \(timed out\)"):
        fetch(mirror, media, timeout=0.5)
    assert not (media / "base.txz").exists()


def test_file_mirror_for_offline_hosts(mirror: Mirror, media: Path) -> None:
    sha = fetch_release(f"file://{mirror.root}{RELEASE_DIR}", media, "base.txz", "MANIFEST")
    assert sha == sha256_of(media / "base.txz").hexdigest()
    assert mirror.requests == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(mirror: Mirror, media: Path) -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    fetch(mirror, media, progress=pipe)
    assert pipe.getvalue() == ""
    (media / "base.txz").unlink()
    (media / "MANIFEST").unlink()
    fetch(mirror, media, progress=terminal)
    size = f"/{round((media / 'base.txz').stat().st_size / 1024)}k"  # unit_divisor=1024
    assert "base.txz:" in terminal.getvalue() and size in terminal.getvalue()


def test_doit_resumes_an_interrupted_fetch(host: Host, mirror: Mirror) -> None:
    mirror.faults[f"{RELEASE_DIR}/base.txz"] = ("cut", 100_000)
    failed = host.doit("run", f"fetch:{RELEASE}")
    assert failed.returncode != 0 and "rerun to resume" in failed.output
    media = host.mountpoint("media")
    assert sorted(p.name for p in media.iterdir()) == [f"{RELEASE}-amd64-base.txz.part"]
    resumed = host.doit("run", "jail:pg-1")
    assert resumed.returncode == 0, resumed.output
    assert (f"{RELEASE_DIR}/base.txz", "bytes=100000-") in mirror.requests
    assert host.running() == {"pg-1"}
