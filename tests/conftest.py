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


def _new_pool(directory: Path) -> str:
    problem = zfspool.zfs_available()
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"ZFS is required under CI: {problem}")
        pytest.skip(problem)
    name = f"tj{uuid.uuid4().hex[:8]}"
    zfspool.create_pool(name, directory)
    return name


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A pool per test module; each host gets its own parent dataset in it. One `zpool
    destroy` at the module's end removes the module's datasets at once: destroying each
    after its test waited seconds on every one (zfs-fuse holds a dataset busy after writes),
    and keeping them all to the session's end made zfs-fuse stop mounting new ones."""
    name = _new_pool(tmp_path_factory.mktemp("pool"))
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


@pytest.fixture(scope="session")
def template_image(mirror: Mirror, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RELEASE's templates, built once per session by thinjail and exported with its own
    `doit image`: hosts import them, unless their test is about building templates."""
    tmp = tmp_path_factory.mktemp("image-host")
    pool = _new_pool(tmp)
    try:
        builder = Host(pool=pool, root=f"{pool}/jails", tmp=tmp, mirror_url=mirror.url)
        run = builder.doit("run", "image", f"image_dir={tmp / 'image'}")
        assert run.returncode == 0, run.output
    finally:
        zfspool.destroy_pool(pool)
    return tmp / "image"


def _host(request: pytest.FixtureRequest, pool: str, mirror: Mirror, tmp: Path,
          freebsd: str = "15.1") -> Iterator[Host]:
    root = f"{pool}/{uuid.uuid4().hex[:8]}/jails"
    builds = request.node.get_closest_marker("builds_templates") is not None
    image = None if builds else request.getfixturevalue("template_image")
    mirror.requests.clear()
    tmp.mkdir(exist_ok=True)
    yield Host(pool=pool, root=root, tmp=tmp, mirror_url=mirror.url, freebsd=freebsd,
               templates_from=image)
    mirror.faults.clear()


@pytest.fixture
def host(request: pytest.FixtureRequest, pool: str, mirror: Mirror,
         tmp_path: Path) -> Iterator[Host]:
    """A stand-in jail host running FreeBSD 15.1, or the version a test module parametrizes
    it with (`pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)`). It imports
    the session's templates unless its test is marked `builds_templates`."""
    yield from _host(request, pool, mirror, tmp_path, getattr(request, "param", "15.1"))


@pytest.fixture
def other_host(request: pytest.FixtureRequest, pool: str, mirror: Mirror,
               tmp_path: Path) -> Iterator[Host]:
    """A second jail host: its own parent dataset, host files and fake state."""
    yield from _host(request, pool, mirror, tmp_path / "other-host")


@pytest.fixture
def third_host(request: pytest.FixtureRequest, pool: str, mirror: Mirror,
               tmp_path: Path) -> Iterator[Host]:
    """A third jail host, for the fleet's tests."""
    yield from _host(request, pool, mirror, tmp_path / "third-host")
