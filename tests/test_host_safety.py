"""No host-side operation follows a link found inside a template, and files are written whole.

A release archive may hold absolute symlinks, and its MANIFEST comes from the same mirror, so
a crafted one can put a link where thinjail or freebsd-update later writes. Each case is an
archive in which a directory or file that a step touches is a link to a host path that
exists (a directory, a file with known content) or does not exist yet. After the run nothing
outside the template has changed: the archive was refused with the member named, or the step
stopped naming the link, or the template was built without writing through the link.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from tasks.errors import ThinjailError
from tasks.files import write_atomic, write_beneath
from tasks.steps.tree import template_root
from tests.support.freebsd_base import build_base_txz
from tests.support.host import RELEASE, Host
from tests.support.mirror import Mirror, publish

pytestmark = pytest.mark.builds_templates  # about building them from the mirror

BASE, SKELETON = f"templates/{RELEASE}-base", f"templates/{RELEASE}-skeleton"
HOST_FILE_TEXT = "the host's own file\n"


def snapshot(path: Path) -> dict[str, str]:
    """Every entry below path (and path itself) with its content digest or link target."""
    entries = {}
    for entry in [path, *path.rglob("*")]:
        rel = str(entry.relative_to(path.parent))
        if entry.is_symlink():
            entries[rel] = "-> " + os.readlink(entry)
        elif entry.is_file():
            entries[rel] = hashlib.sha256(entry.read_bytes()).hexdigest()
        else:
            entries[rel] = "dir"
    return entries


@pytest.fixture
def host_paths(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A host directory with a file in it, a host file, and a host path that does not exist."""
    outside = tmp_path / "the-host"
    (outside / "dir").mkdir(parents=True)
    (outside / "dir/keep").write_text(HOST_FILE_TEXT)
    (outside / "file").write_text(HOST_FILE_TEXT)
    return outside / "dir", outside / "file", outside / "not-yet" / "db"


def climbing(path: Path) -> str:
    """A relative link target that climbs out of any template to path."""
    return "../" * 40 + str(path).lstrip("/")


# case -> (links in the archive: path -> "dir" | "file" | "missing" | "dir, relative"),
# what the run says (None: it builds the template)
CASES = {
    "var/db is a host directory": ({"var/db": "dir"},
                                   "member './var/db' is a symlink to {dir}, a directory of "
                                   "this host"),
    "var/db climbs to a host directory": ({"var/db": "dir, relative"},
                                          "member './var/db' is a symlink to ../"),
    "etc is a host directory": ({"etc": "dir"}, "member './etc' is a symlink to {dir}"),
    "etc/ssl/certs is a host directory": ({"etc/ssl/certs": "dir"},
                                          "member './etc/ssl/certs' is a symlink to {dir}"),
    "usr/local is a host directory": ({"usr/local": "dir"},
                                      "member './usr/local' is a symlink to {dir}"),
    "the skeleton mount point is a host directory": ({"skeleton": "dir"},
                                                     "member './skeleton' is a symlink"),
    "var/db leads to a host path made later": ({"var/db": "missing"},
                                               "tzdns: {base}/var/db is a symlink to {missing}"),
    "files tzdns writes are host files": ({"etc/resolv.conf": "file", "etc/localtime": "file",
                                           "var/db/zoneinfo": "file"}, None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_archive_changes_nothing_outside_the_template(
        host: Host, mirror: Mirror, host_paths: tuple[Path, Path, Path], case: str) -> None:
    host_dir, host_file, missing = host_paths
    links, message = CASES[case]
    targets = {"dir": str(host_dir), "file": str(host_file), "missing": str(missing),
               "dir, relative": climbing(host_dir)}
    label = f"hostile-{abs(hash(case))}"
    archive, manifest = build_base_txz(host.tmp / label, RELEASE,
                                       {path: targets[kind] for path, kind in links.items()})
    publish(mirror.root / label, archive, manifest, RELEASE)
    host.overrides["mirror"] = f"{mirror.url}/{label}"
    before = snapshot(host_dir.parent)

    run = host.doit("run", "jail:pg-1")

    assert snapshot(host_dir.parent) == before
    assert not missing.parent.exists()
    if message is None:
        assert run.returncode == 0, run.output
        base, skeleton = host.mountpoint(BASE), host.mountpoint(SKELETON)
        assert os.readlink(base / "etc") == "skeleton/etc"
        assert (skeleton / "etc/resolv.conf").read_text() == "nameserver 192.168.7.1\n"
        assert not (skeleton / "etc/resolv.conf").is_symlink()
        assert os.readlink(skeleton / "etc/localtime") == "/usr/share/zoneinfo/Asia/Shanghai"
        assert (skeleton / "var/db/zoneinfo").read_text() == "Asia/Shanghai\n"
        assert not (skeleton / "var/db/zoneinfo").is_symlink()
    else:
        assert run.returncode != 0
        expected = message.format(dir=host_dir, missing=missing,
                                  base=host.mountpoint() / BASE)
        assert expected in run.output, run.output
        assert "Traceback" not in run.output
        assert not host.exists(SKELETON)


def test_write_beneath_stops_at_a_link(tmp_path: Path) -> None:
    root, outside = tmp_path / "template", tmp_path / "host-dir"
    (root / "var").mkdir(parents=True)
    outside.mkdir()
    (root / "var/db").symlink_to(outside)
    with pytest.raises(ThinjailError, match=r"tzdns: .*/template/var/db is a symlink to "):
        write_beneath(root, "var/db/zoneinfo", b"UTC\n", "tzdns")
    assert list(outside.iterdir()) == []


def test_write_beneath_replaces_a_link_it_was_asked_to_write(tmp_path: Path) -> None:
    root, host_file = tmp_path / "template", tmp_path / "host-file"
    (root / "etc").mkdir(parents=True)
    host_file.write_text(HOST_FILE_TEXT)
    (root / "etc/resolv.conf").symlink_to(host_file)
    write_beneath(root, "etc/resolv.conf", b"nameserver 192.0.2.1\n", "tzdns")
    assert host_file.read_text() == HOST_FILE_TEXT
    assert (root / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"
    assert not (root / "etc/resolv.conf").is_symlink()


def test_write_atomic_never_writes_through_a_planted_temporary_name(tmp_path: Path) -> None:
    """Earlier versions wrote to `.<name>.thinjail-tmp`, following a link planted there."""
    host_file = tmp_path / "host-file"
    host_file.write_text(HOST_FILE_TEXT)
    (tmp_path / ".record.thinjail-tmp").symlink_to(host_file)
    write_atomic(tmp_path / "record", b"mine\n")
    assert host_file.read_text() == HOST_FILE_TEXT
    assert (tmp_path / "record").read_text() == "mine\n"


def _write_many(path: Path, text: str) -> None:
    for _ in range(300):
        write_atomic(path, text.encode())


def test_two_writers_never_clobber_each_other(tmp_path: Path) -> None:
    """Each writer has its own temporary file: both finish, and the file is one of theirs,
    whole."""
    target = tmp_path / "patch-offers.json"
    texts = ["a" * 50_000, "b" * 70_000]
    workers = [multiprocessing.Process(target=_write_many, args=(target, text)) for text in texts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [w.exitcode for w in workers] == [0, 0]
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_template_root_follows_the_split_and_nothing_else(tmp_path: Path) -> None:
    base, skeleton = tmp_path / "base", tmp_path / "skeleton"
    (base / "var").mkdir(parents=True)
    assert template_root(base, skeleton, "var/db/x", "tzdns") == base
    (base / "var").rename(tmp_path / "moved")  # in the middle of a split: gone from the base
    assert template_root(base, skeleton, "var/db/x", "tzdns") == skeleton
    (base / "var").symlink_to("skeleton/var")  # after it
    assert template_root(base, skeleton, "var/db/x", "tzdns") == skeleton
    (base / "var").unlink()
    (base / "var").symlink_to(tmp_path / "moved")  # not the split's link
    with pytest.raises(ThinjailError, match="is neither a directory nor the skeleton split's"):
        template_root(base, skeleton, "var/db/x", "tzdns")
