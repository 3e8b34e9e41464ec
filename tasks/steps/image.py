"""image: export a release's templates as verified `zfs send` streams, and import them.

An image is a directory: `base.zfs.xz` and `skeleton.zfs.xz` (`zfs send -p`, so the stamps
travel with the datasets, compressed with xz, single-threaded so the same snapshot always
gives the same bytes) and `manifest.json` (release, level, patch level, stamps, sha256 and
size of every file, creation time, thinjail version). Import verifies every file before the
first `zfs receive`; a receive is atomic, so a failed import leaves no dataset behind.

An image holds one patch level (`doit image level=pN`; the current one by default) and lands
as that level: on a host without the release's templates as its first build, beside the
levels a host has as `templates/<release>/<level>-base` (read-only, as levels are), which
its jails then move to the rolling way when it is the newest.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from tasks import __version__
from tasks.errors import ThinjailError
from tasks.files import write_atomic
from tasks.inputs import digest
from tasks.runner import Runner
from tasks.steps.fetch import download, sha256_of
from tasks.zfs import Zfs

MANIFEST = "manifest.json"
FORMAT = 1
ROLES = ("base", "skeleton")


def _stream_file(role: str) -> str:
    return f"{role}.zfs.xz"


def export_image(runner: Runner, zfs: Zfs, release: str, arch: str, level: str, base: str,
                 skeleton_snapshot: str, out_dir: Path) -> dict[str, Any]:
    """Write the image of one level of a release into out_dir; return its manifest."""
    base_ds = zfs.get(base)
    if base_ds is None or "update" not in base_ds.stamps:
        raise ThinjailError(f"image: {base} is not built yet: run `doit snapshot` first")
    base_snapshot = f"{base}@image-{digest(sorted(base_ds.stamps.items()))[:10]}"
    if not zfs.exists(base_snapshot):
        zfs.snapshot(base_snapshot, "image")
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshots = {"base": base_snapshot, "skeleton": skeleton_snapshot}
    datasets = {}
    for role, snapshot in snapshots.items():
        path = out_dir / _stream_file(role)
        part = path.with_name(path.name + ".part")
        with part.open("wb") as out:
            runner.pipeline([["zfs", "send", "-p", snapshot], ["xz", "-T1", "-6", "-c"]],
                            step="image", stdout=out)
        os.replace(part, path)
        dataset, snapshot_name = snapshot.split("@")
        datasets[role] = {"snapshot": snapshot_name, "file": path.name,
                          "sha256": sha256_of(path).hexdigest(), "size": path.stat().st_size,
                          "stamps": dict(sorted(zfs.get(dataset).stamps.items()))}  # type: ignore[union-attr]
    manifest = {"format": FORMAT, "thinjail_version": __version__, "release": release,
                "arch": arch, "source": source_of(base), "level": level,
                "patch": base_ds.stamps.get("patch"),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "datasets": datasets}
    write_atomic(out_dir / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"image of {release} {level} written to {out_dir}")
    return manifest


def source_of(base: str) -> str:
    """Where a base dataset's tree came from, by its name (plan.release_stem)."""
    return "pkgbase" if "-pkgbase" in base.rpartition("/templates/")[2] else "base.txz"


def _url(source: str) -> str:
    return source if "://" in source else Path(source).resolve().as_uri()


def image_level(source: str, release: str, arch: str) -> str:
    """The level an image holds (its manifest is fetched; an image of an earlier thinjail
    names only its patch level). Asked while the task graph is planned: in a temporary
    directory, so that it needs no dataset mounted yet."""
    with tempfile.TemporaryDirectory(prefix="thinjail-image-") as staging:
        path = Path(staging) / MANIFEST
        download(f"{_url(source).rstrip('/')}/{MANIFEST}", path)
        manifest = _read_manifest(path, release, arch)
    return str(manifest.get("level") or manifest["patch"])


def import_image(runner: Runner, zfs: Zfs, source: str, staging: Path, release: str,
                 arch: str, targets: dict[str, str], parent: str | None = None) -> None:
    """Receive an image from a directory path or URL into the datasets `targets` names
    ({"base": ..., "skeleton": ...}), after verifying every file. A level received beside
    others (`parent`: the dataset holding them) gets its base read-only."""
    skeleton = targets["skeleton"]
    if (zfs.exists(skeleton) and not zfs.exists(targets["base"])
            and zfs.created_by_us(skeleton) and not zfs.clones(skeleton)):
        # A skeleton without its base, nothing cloned from it: an import cut off between
        # its two receives (the base comes last). Received again.
        zfs.destroy(skeleton, "image import", recursive=True)
    existing = [name for name in targets.values() if zfs.exists(name)]
    if existing:
        raise ThinjailError(f"image import: {', '.join(existing)} exist already: an image only "
                            "lands where there are no templates (thinjail never destroys them)")
    if parent and not zfs.exists(parent):
        zfs.create(parent, "image import")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        download(f"{_url(source).rstrip('/')}/{MANIFEST}", staging / MANIFEST)
        manifest = _read_manifest(staging / MANIFEST, release, arch)
        made_from, wanted = manifest.get("source", "base.txz"), source_of(targets["base"])
        if made_from != wanted:
            raise ThinjailError(f"image import: the image's {release} was built from "
                                f"{made_from}, the config wants {wanted}: export one from a "
                                "host with the same source, or change `source`")
        for role in ROLES:
            entry = manifest["datasets"][role]
            local = staging / Path(entry["file"]).name
            got, _ = download(f"{_url(source).rstrip('/')}/{entry['file']}", local)
            if got != entry["sha256"] or local.stat().st_size != entry["size"]:
                raise ThinjailError(f"image import: {entry['file']} has sha256 {got} and "
                                    f"{local.stat().st_size} bytes, the manifest says "
                                    f"{entry['sha256']} and {entry['size']}: the image is "
                                    "damaged or was tampered with; nothing was received")
        for role in reversed(ROLES):  # the base, whose update stamp marks it done, last
            local = staging / Path(manifest["datasets"][role]["file"]).name
            runner.pipeline([["xz", "-dc", str(local)], ["zfs", "receive", targets[role]]],
                            step="image import")
            zfs.invalidate()
        if parent:
            zfs.set_readonly(targets["base"], "image import")
    finally:
        for leftover in staging.iterdir():
            leftover.unlink()
        staging.rmdir()
    print(f"imported {release} {manifest.get('level') or manifest['patch']} from {source}")


def _read_manifest(path: Path, release: str, arch: str) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text())
        entries = manifest["datasets"]
        ok = manifest["format"] == FORMAT and all(
            isinstance(entries[role]["sha256"], str) and isinstance(entries[role]["size"], int)
            and isinstance(entries[role]["file"], str) for role in ROLES)
    except (ValueError, KeyError, TypeError) as exc:
        raise ThinjailError(f"image import: {path.name} is not a thinjail image manifest") from exc
    if not ok:
        raise ThinjailError(f"image import: {path.name} is not a format {FORMAT} manifest")
    if (manifest.get("release"), manifest.get("arch")) != (release, arch):
        raise ThinjailError(f"image import: the image holds {manifest.get('release')} "
                            f"{manifest.get('arch')}, the config wants {release} {arch}")
    return manifest
