"""fetch: download a release's base.txz and MANIFEST and verify the archive's sha256.

The archive is written to a `.part` file and renamed only after its sha256 matched the
MANIFEST, so a file under the final name is always complete and verified.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tasks.errors import ThinjailError

STEP = "fetch"
TIMEOUT_SECONDS = 60
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


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path) -> str:
    """Stream url into dest; return the sha256 of what was written."""
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response, \
                dest.open("wb") as out:
            while chunk := response.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as exc:
        raise ThinjailError(f"{STEP}: {url}: HTTP {exc.code} {exc.reason}: check `mirror`, "
                            "`release` and `arch` in the config") from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ThinjailError(f"{STEP}: cannot download {url}: {reason}") from exc
    return h.hexdigest()


def fetch_release(mirror_dir: str, media_dir: Path, archive_name: str,
                  manifest_name: str) -> str:
    """Download MANIFEST and base.txz from mirror_dir into media_dir under the given names;
    return the verified sha256. Nothing lands under a final name unless verified."""
    archive, manifest = media_dir / archive_name, media_dir / manifest_name
    manifest_part = manifest.with_name(manifest.name + ".part")
    archive_part = archive.with_name(archive.name + ".part")
    try:
        download(f"{mirror_dir}/MANIFEST", manifest_part)
        expected = manifest_sha256(manifest_part.read_text(errors="replace"))
        got = download(f"{mirror_dir}/base.txz", archive_part)
        if got != expected:
            raise ThinjailError(f"{STEP}: {mirror_dir}/base.txz has sha256 {got}, but MANIFEST "
                                f"says {expected}: the download is corrupt or the mirror is "
                                "inconsistent; nothing was kept")
        os.replace(archive_part, archive)
        os.replace(manifest_part, manifest)
    finally:
        for part in (archive_part, manifest_part):
            part.unlink(missing_ok=True)
    return expected


def verify_archive(archive: Path, manifest: Path) -> str:
    """Check a fetched archive against its MANIFEST before use; return its sha256."""
    if not archive.is_file() or not manifest.is_file():
        raise ThinjailError(f"{STEP}: {archive} or {manifest} is missing: run `doit fetch`")
    expected = manifest_sha256(manifest.read_text(errors="replace"))
    got = sha256_of(archive)
    if got != expected:
        raise ThinjailError(f"extract: {archive} has sha256 {got}, MANIFEST says {expected}: "
                            f"delete {archive} and rerun to download it again")
    return got
