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
from tests.support.host import RELEASE, Host
from tests.support.mirror import Mirror, publish, serve

# The tests' release (supported), a supported one whose end of life is near, and one past it.
RELEASES = (RELEASE, "14.4-RELEASE", "14.3-RELEASE")


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
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mirror]:
    """The RELEASES under <url>/; under <url>/bad a RELEASE whose MANIFEST has a wrong
    sha256."""
    work = tmp_path_factory.mktemp("mirror")
    root = work / "www"
    for release in RELEASES:
        archive, manifest = build_base_txz(work / release, release)
        publish(root, archive, manifest, release)
    archive, manifest = work / RELEASE / "base.txz", work / RELEASE / "MANIFEST"
    bad = publish(root / "bad", archive, manifest, RELEASE)
    good_sha = manifest.read_text().split("base.txz\t")[1][:64]
    (bad / "MANIFEST").write_text(manifest.read_text().replace(good_sha, "f" * 64))
    with serve(root) as server:
        yield server


@pytest.fixture(scope="module")
def retired(pool: str) -> Iterator[list[str]]:
    """The parent datasets of a module's hosts, destroyed when the module ends: zfs-fuse
    holds a dataset busy for seconds after it was written, so destroying each right after
    its test spent most of the suite's time waiting; minutes later it goes at once."""
    parents: list[str] = []
    yield parents
    for parent in parents:
        zfspool.destroy_tree(parent)


def _host(pool: str, mirror: Mirror, tmp: Path, retired: list[str],
          freebsd: str = "15.1") -> Iterator[Host]:
    root = f"{pool}/{uuid.uuid4().hex[:8]}/jails"
    mirror.requests.clear()
    tmp.mkdir(exist_ok=True)
    retired.append(root.rsplit("/", 1)[0])
    yield Host(pool=pool, root=root, tmp=tmp, mirror_url=mirror.url, freebsd=freebsd)
    mirror.faults.clear()


@pytest.fixture
def host(request: pytest.FixtureRequest, pool: str, mirror: Mirror, tmp_path: Path,
         retired: list[str]) -> Iterator[Host]:
    """A stand-in jail host running FreeBSD 15.1, or the version a test module parametrizes
    it with (`pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)`)."""
    yield from _host(pool, mirror, tmp_path, retired, getattr(request, "param", "15.1"))


@pytest.fixture
def other_host(pool: str, mirror: Mirror, tmp_path: Path,
               retired: list[str]) -> Iterator[Host]:
    """A second jail host: its own parent dataset, host files and fake state."""
    yield from _host(pool, mirror, tmp_path / "other-host", retired)
