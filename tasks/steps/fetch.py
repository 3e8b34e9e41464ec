"""fetch: download a release's base.txz and MANIFEST and verify the archive's sha256.

The archive is downloaded to a `.part` file, resumed with an HTTP Range request after an
interruption, and renamed only after its sha256 matched the MANIFEST; a small `.verified`
record (sha256, size, mtime) then lets later runs trust it without hashing it again. A cached
archive that matches the cached MANIFEST is reused without any download.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import IO

from tasks.errors import ThinjailError
from tasks.files import write_atomic

STEP = "fetch"
TIMEOUT_SECONDS = 60.0
CHUNK = 1 << 20


def manifest_sha256(manifest: str, distribution: str = "base.txz") -> str:
    """The sha256 the MANIFEST lists for one distribution file (tab-separated lines:
    file, sha256, file count, name, description, on/off)."""
    for line in manifest.splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0] == distribution:
            sha = fields[1].strip().lower()
            if len(sha) == 64 and all(c in "0123456789abcdef" for c in sha):
                return sha
            raise ThinjailError(f"{STEP}: MANIFEST line for {distribution} has no valid sha256")
    raise ThinjailError(f"{STEP}: MANIFEST does not list {distribution}")


def sha256_of(path: Path, start: hashlib._Hash | None = None) -> hashlib._Hash:
    h = start or hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h


def _record(archive: Path) -> Path:
    return archive.with_name(archive.name + ".verified")


def is_verified(archive: Path, manifest: Path) -> bool:
    """True when the archive is the one verified against the MANIFEST (cheap: no hashing)."""
    try:
        record = json.loads(_record(archive).read_text())
        stat = archive.stat()
        expected = manifest_sha256(manifest.read_text(errors="replace"))
    except (OSError, ValueError, ThinjailError):
        return False
    return record == {"sha256": expected, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _mark_verified(archive: Path, sha: str) -> None:
    stat = archive.stat()
    record = {"sha256": sha, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    write_atomic(_record(archive), json.dumps(record).encode())


def download(url: str, dest: Path, *, timeout: float = TIMEOUT_SECONDS, resume: bool = False,
             progress: IO[str] | None = None) -> tuple[str, bool]:
    """Stream url into dest, continuing an earlier partial dest when resume is set and the
    server honours Range. Return the sha256 of the whole file and whether it was resumed.
    A progress bar goes to `progress` when that is a terminal."""
    # Here, not at the top: a no-op run downloads nothing, and these take ~10 ms to import.
    import http.client
    import urllib.error
    import urllib.request

    from tqdm import tqdm

    offset = dest.stat().st_size if resume and dest.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = offset > 0 and getattr(response, "status", None) == 206
            h = sha256_of(dest) if resumed else hashlib.sha256()
            length = int(response.headers.get("Content-Length") or 0)
            start = offset if resumed else 0
            with dest.open("ab" if resumed else "wb") as out, tqdm(
                    total=start + length or None, initial=start, unit="B", unit_scale=True,
                    unit_divisor=1024, desc=dest.name.removesuffix(".part"), leave=False,
                    file=progress or sys.stderr, disable=None) as bar:
                received = 0
                while chunk := response.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
                    received += len(chunk)
            if received < length:  # http.client ends a cut-off body without an error
                raise ThinjailError(f"{STEP}: {url}: the connection closed after "
                                    f"{start + received} of {start + length} bytes; rerun to "
                                    "resume the download")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part is no prefix of what the server has
            dest.unlink()
            return download(url, dest, timeout=timeout, progress=progress)
        raise ThinjailError(f"{STEP}: {url}: HTTP {exc.code} {exc.reason}: check `mirror`, "
                            "`release` and `arch` in the config") from exc
    except TimeoutError as exc:
        raise ThinjailError(f"{STEP}: {url}: no data for {timeout:g} s (timed out); rerun to "
                            "resume the download") from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ThinjailError(f"{STEP}: cannot download {url}: {reason}; rerun to resume") from exc
    return h.hexdigest(), resumed


def fetch_release(mirror_dir: str, media_dir: Path, archive_name: str, manifest_name: str,
                  *, timeout: float = TIMEOUT_SECONDS, progress: IO[str] | None = None) -> str:
    """Make media_dir hold a verified archive and its MANIFEST under the given names; return
    the archive's sha256. Nothing lands under a final name unless verified."""
    archive, manifest = media_dir / archive_name, media_dir / manifest_name
    if archive.is_file() and manifest.is_file():
        cached = manifest_sha256(manifest.read_text(errors="replace"))
        if sha256_of(archive).hexdigest() == cached:
            _mark_verified(archive, cached)  # cached: no download at all
            return cached
    archive_part = archive.with_name(archive.name + ".part")
    manifest_part = manifest.with_name(manifest.name + ".part")
    try:
        download(f"{mirror_dir}/MANIFEST", manifest_part, timeout=timeout)
        expected = manifest_sha256(manifest_part.read_text(errors="replace"))
        got, resumed = download(f"{mirror_dir}/base.txz", archive_part, timeout=timeout,
                                resume=True, progress=progress)
        if got != expected and resumed:  # the kept part belonged to another archive
            got, _ = download(f"{mirror_dir}/base.txz", archive_part, timeout=timeout,
                              progress=progress)
        if got != expected:
            archive_part.unlink()
            raise ThinjailError(f"{STEP}: {mirror_dir}/base.txz has sha256 {got}, but MANIFEST "
                                f"says {expected}: the download is corrupt or the mirror is "
                                "inconsistent; nothing was kept")
        _record(archive).unlink(missing_ok=True)
        os.replace(archive_part, archive)
        os.replace(manifest_part, manifest)
    finally:
        manifest_part.unlink(missing_ok=True)  # small: always fetched whole
    _mark_verified(archive, expected)
    return expected


def verify_archive(archive: Path, manifest: Path) -> str:
    """Check a fetched archive against its MANIFEST before use; return its sha256."""
    if not archive.is_file() or not manifest.is_file():
        raise ThinjailError(f"extract: {archive} or {manifest} is missing: run `doit fetch`")
    expected = manifest_sha256(manifest.read_text(errors="replace"))
    got = sha256_of(archive).hexdigest()
    if got != expected:
        raise ThinjailError(f"extract: {archive} has sha256 {got}, MANIFEST says {expected}: "
                            f"delete {archive} and rerun to download it again")
    return got
