"""Release-stage benchmark: thinjail's extract against a bare `bsdtar -xf` of the same archive,
and thinjail's fetch against a plain copy from the same local HTTP server, as ratios.

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running:
    python -m bench.release [--files 4000] [--repeat 3]
Writes bench/results/release.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

from tasks.runner import Runner
from tasks.steps.extract import ExtractInputs, extract_base
from tasks.steps.fetch import fetch_release
from tasks.zfs import Zfs
from tests.support import zfspool
from tests.support.mirror import serve

RESULTS = Path(__file__).resolve().parent / "results" / "release.json"
WORDS = [f"word{i}" for i in range(500)]


def build_archive(work: Path, files: int) -> tuple[Path, int]:
    """A base.txz-like archive: many small, compressible files and some binaries."""
    rng = random.Random(1)
    tree = work / "tree"
    for i in range(files):
        path = tree / f"usr/share/d{i % 97}/f{i}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if i % 50 == 0:
            path.write_bytes(rng.randbytes(rng.randint(50_000, 400_000)))
        else:
            path.write_text(" ".join(rng.choices(WORDS, k=rng.randint(100, 3000))))
    archive = work / "base.txz"
    subprocess.run(["bsdtar", "-c", "-J", "--options", "xz:compression-level=1", "-f",
                    str(archive), "-C", str(tree), "."], check=True)
    size = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    shutil.rmtree(tree)
    return archive, size


def median_seconds(action: Callable[[int], None], repeat: int) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        action(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    problem = zfspool.zfs_available()
    if problem:
        raise SystemExit(f"bench: {problem}")

    with tempfile.TemporaryDirectory(prefix="thinjail-bench-") as tmp:
        work = Path(tmp)
        archive, unpacked = build_archive(work, args.files)
        sha = hashlib.sha256(archive.read_bytes()).hexdigest()
        release_dir = work / "www/amd64/amd64/14.3-RELEASE"
        release_dir.mkdir(parents=True)
        shutil.copy(archive, release_dir / "base.txz")
        manifest = f'base.txz\t{sha}\t{args.files}\tbase\t"Base system (MANDATORY)"\ton\n'
        (release_dir / "MANIFEST").write_text(manifest)
        pool = f"tjbench{uuid.uuid4().hex[:6]}"
        zfspool.create_pool(pool, work, size="4G")
        try:
            figures = measure(pool, work, release_dir, args.repeat)
        finally:
            zfspool.destroy_pool(pool)
        figures.update({"archive_bytes": archive.stat().st_size, "unpacked_bytes": unpacked,
                        "files": args.files, "repeat": args.repeat})
    write(figures)


def measure(pool: str, work: Path, release_dir: Path, repeat: int) -> dict[str, object]:
    archive = release_dir / "base.txz"
    # The extract step reads the archive from the media dataset, as in a run.
    zfspool.run("zfs", "create", "-p", f"{pool}/bench/media")
    media_dir = Path(zfspool.zfs_get(f"{pool}/bench/media", "mountpoint"))
    for name in ("base.txz", "MANIFEST"):
        shutil.copy(release_dir / name, media_dir / name)
    runner = Runner(log_path=None)
    zfs = Zfs(runner, f"{pool}/bench", work / "generation")

    def bare_extract(i: int) -> None:
        name = f"{pool}/bare{i}"
        zfspool.run("zfs", "create", "-p", name)
        target = zfspool.zfs_get(name, "mountpoint")
        subprocess.run(["bsdtar", "-x", "-f", str(archive), "-C", target], check=True)

    def thinjail_extract(i: int) -> None:
        extract_base(runner, zfs, ExtractInputs(
            base=f"{pool}/bench/base{i}", media=f"{pool}/bench/media", archive_name="base.txz",
            manifest_name="MANIFEST", release="14.3-RELEASE", arch="amd64"))

    with serve(work / "www") as mirror:
        url = f"{mirror.url}/amd64/amd64/14.3-RELEASE"

        def plain_copy(i: int) -> None:
            with urllib.request.urlopen(f"{url}/base.txz") as response, \
                    (work / f"plain{i}.txz").open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)

        def thinjail_fetch(i: int) -> None:
            media = work / f"media{i}"
            media.mkdir()
            fetch_release(url, media, "base.txz", "MANIFEST")

        seconds = {
            "bsdtar_extract_s": median_seconds(bare_extract, repeat),
            "thinjail_extract_s": median_seconds(thinjail_extract, repeat),
            "plain_copy_s": median_seconds(plain_copy, repeat),
            "thinjail_fetch_s": median_seconds(thinjail_fetch, repeat),
        }
    size_mib = archive.stat().st_size / (1 << 20)
    return {
        **{k: round(v, 3) for k, v in seconds.items()},
        "extract_ratio": round(seconds["thinjail_extract_s"] / seconds["bsdtar_extract_s"], 3),
        "plain_copy_mib_s": round(size_mib / seconds["plain_copy_s"], 1),
        "thinjail_fetch_mib_s": round(size_mib / seconds["thinjail_fetch_s"], 1),
        "download_ratio": round(seconds["thinjail_fetch_s"] / seconds["plain_copy_s"], 3),
    }


def write(figures: dict[str, object]) -> None:
    figures["machine"] = f"{platform.system()} {platform.machine()}, {platform.node()}, " \
                         f"python {platform.python_version()}"
    figures["when"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
