"""CI images: export verified templates on one host, import them on another."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.host import RELEASE as R
from tests.support.host import Host
from tests.support.jailview import resolve
from tests.support.mirror import Mirror

pytestmark = pytest.mark.builds_templates  # about building them from the mirror

NOT_AGAIN = {f"fetch:{R}", f"extract:{R}", f"update:{R}", f"skeleton:{R}"}


def export(host: Host, out: Path) -> dict:
    run = host.doit("run", "image", f"image_dir={out}")
    assert run.returncode == 0, run.output
    return json.loads((out / "manifest.json").read_text())


def test_export_import_round_trip(host: Host, other_host: Host, mirror: Mirror,
                                  tmp_path: Path) -> None:
    assert host.doit("run", "jail:pg-1").returncode == 0
    manifest = export(host, tmp_path / "image")
    assert (manifest["release"], manifest["arch"], manifest["patch"]) == (R, "amd64", "p0")
    assert set(manifest["datasets"]) == {"base", "skeleton"}
    assert manifest["datasets"]["base"]["stamps"]["update"] == host.get(
        f"templates/{R}-base", "thinjail:update")
    assert manifest["thinjail_version"] and manifest["created"].endswith("Z")
    for entry in manifest["datasets"].values():
        assert len(entry["sha256"]) == 64 and entry["size"] > 0
    # Exporting the same templates again gives the same content digests.
    again = export(host, tmp_path / "image2")
    assert {r: e["sha256"] for r, e in again["datasets"].items()} == {
        r: e["sha256"] for r, e in manifest["datasets"].items()}

    mirror.requests.clear()
    other_host.overrides["image"] = str(tmp_path / "image")
    run = other_host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    assert f"image_import:{R}" in run.ran() and not NOT_AGAIN & run.ran()
    assert mirror.requests == []  # no download
    commands = [" ".join(argv) for argv in run.changing_commands()]
    assert not any(c.startswith(("bsdtar -x", "freebsd-update")) for c in commands)
    assert any(c.startswith("xz -dc") and "zfs receive" in c for c in commands)
    assert other_host.get(f"templates/{R}-base", "thinjail:patch") == "p0"
    assert other_host.running() == {"pg-1"}
    base = other_host.mountpoint(f"templates/{R}-base")
    clone = other_host.mountpoint("containers/pg-1")
    assert resolve(base, clone, "/etc/ssl/certs/4042bcee.0")[1].is_file()
    assert other_host.doit("run", "jail:pg-1").ran() == set()


def damage_and_import(host: Host, other_host: Host, tmp_path: Path, how: str) -> str:
    assert host.doit("run", f"snapshot:{R}").returncode == 0
    image = tmp_path / "image"
    export(host, image)
    stream = image / "skeleton.zfs.xz"
    data = bytearray(stream.read_bytes())
    if how == "tamper":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    stream.write_bytes(bytes(data))
    other_host.overrides["image"] = str(image)
    run = other_host.doit("run", "jail:pg-1")
    assert run.returncode != 0
    # Nothing received, nothing staged.
    assert not other_host.exists(f"templates/{R}-base")
    assert not other_host.exists(f"templates/{R}-skeleton")
    assert list(other_host.mountpoint("media").iterdir()) == []
    assert not any(argv[:2] == ["zfs", "receive"] or "receive" in argv
                   for argv in run.changing_commands())
    return run.output


def test_tampered_image_is_rejected(host: Host, other_host: Host, tmp_path: Path) -> None:
    output = damage_and_import(host, other_host, tmp_path, "tamper")
    assert "skeleton.zfs.xz has sha256" in output and "tampered" in output


def test_truncated_image_is_rejected(host: Host, other_host: Host, tmp_path: Path) -> None:
    output = damage_and_import(host, other_host, tmp_path, "truncate")
    assert "the image is damaged" in output


def test_image_is_built_on_linux_without_freebsd_commands(host: Host, tmp_path: Path) -> None:
    host.fakes = False
    host.overrides["patch"] = "p0"  # a pinned template needs no freebsd-update
    manifest = export(host, tmp_path / "image")
    assert manifest["patch"] == "p0"
    host.overrides["patch"] = "latest"
    run = host.doit("run", "image", f"image_dir={tmp_path / 'image3'}")
    assert run.returncode != 0
    assert "needs `freebsd-update`, a FreeBSD command that this host does not have" in run.output
