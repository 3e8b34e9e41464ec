"""What the benchmarks that build jails share: a ZFS pool on a sparse file and the tests'
synthetic base.txz served over HTTP on 127.0.0.1, both gone afterwards."""

from __future__ import annotations

import json
import platform
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import zfspool
from tests.support.freebsd_base import build_base_txz
from tests.support.host import RELEASE, Host
from tests.support.mirror import publish, serve


@dataclass(frozen=True)
class Stage:
    work: Path
    pool: str
    mirror_url: str

    def host(self, name: str) -> Host:
        """A new stand-in jail host with its own parent dataset and directory."""
        tmp = self.work / name
        tmp.mkdir()
        return Host(pool=self.pool, root=f"{self.pool}/{name}/jails", tmp=tmp,
                    mirror_url=self.mirror_url)


@contextmanager
def stage() -> Iterator[Stage]:
    problem = zfspool.zfs_available()
    if problem:
        raise SystemExit(f"bench: {problem}")
    with tempfile.TemporaryDirectory(prefix="thinjail-bench-") as tmp:
        work = Path(tmp)
        archive, manifest = build_base_txz(work / "build", RELEASE)
        publish(work / "www", archive, manifest, RELEASE)
        pool = f"tjbench{uuid.uuid4().hex[:6]}"
        zfspool.create_pool(pool, work, size="2G")
        try:
            with serve(work / "www") as mirror:
                yield Stage(work, pool, mirror.url)
        finally:
            zfspool.destroy_pool(pool)


def write_results(path: Path, rows: list[dict[str, Any]]) -> None:
    result = {"machine": f"{platform.system()} {platform.machine()}, python "
                         f"{platform.python_version()}, zfs-fuse",
              "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "rows": rows}
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
