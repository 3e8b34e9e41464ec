"""Fixtures: a real zfs-fuse pool, a synthetic FreeBSD mirror on 127.0.0.1, one fresh
stand-in jail host per test. With CI=true a missing ZFS is a failure, never a skip."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import zfspool
from tests.support.freebsd_base import build_base_txz
from tests.support.host import Host
from tests.support.mirror import publish, serve


@pytest.fixture(scope="session")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    problem = zfspool.zfs_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"ZFS is required under CI: {problem}")
        pytest.skip(problem)
    name = f"tj{uuid.uuid4().hex[:8]}"
    zfspool.create_pool(name, tmp_path_factory.mktemp("pool"))
    yield name
    zfspool.destroy_pool(name)


@pytest.fixture(scope="session")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """The good release under <url>/, one with a wrong sha256 in MANIFEST under <url>/bad."""
    work = tmp_path_factory.mktemp("mirror")
    archive, manifest = build_base_txz(work / "build")
    root = work / "www"
    publish(root, archive, manifest)
    bad = publish(root / "bad", archive, manifest)
    text = (bad / "MANIFEST").read_text()
    (bad / "MANIFEST").write_text(text.replace("\tbase\t", "\tbase\t").replace(
        text.split("base.txz\t")[1][:64], "f" * 64))
    with serve(root) as url:
        yield {"url": url, "archive": archive, "manifest": manifest}


@pytest.fixture
def host(pool: str, mirror: dict[str, object], tmp_path: Path) -> Iterator[Host]:
    root = f"{pool}/{uuid.uuid4().hex[:8]}/jails"
    yield Host(pool=pool, root=root, tmp=tmp_path, mirror_url=str(mirror["url"]))
    zfspool.destroy_tree(root.rsplit("/", 1)[0])
