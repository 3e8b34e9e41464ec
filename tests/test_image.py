"""CI images: export verified templates on one host, import them on another."""

from __future__ import annotations

import json
import subprocess
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


def test_an_image_holds_a_level_and_lands_as_that_level(host: Host, other_host: Host,
                                                        tmp_path: Path) -> None:
    """`doit image level=pN` exports that level; a host with the release's templates
    imports a level it lacks beside its own, read-only, and its jails move to it."""
    assert host.doit("run").returncode == 0
    rc = (host.mountpoint(f"templates/{R}-skeleton") / "etc/rc").read_text()
    for patched in (host, other_host):  # both ask the same update servers
        patched.publish_patch("p0", files={"etc/rc": rc})
    assert host.doit("run").returncode == 0
    host.publish_patch("p1", files={"etc/rc": "# rc p1\n"})
    assert host.doit("run").returncode == 0
    unknown = host.doit("run", "image", f"image_dir={tmp_path / 'p7'}", "level=p7")
    assert unknown.returncode != 0 and "has no level p7 on this host (it has: p0, p1)" in \
        unknown.output
    p0 = host.doit("run", "image", f"image_dir={tmp_path / 'p0'}", "level=p0")
    assert p0.returncode == 0, p0.output
    assert json.loads((tmp_path / "p0/manifest.json").read_text())["level"] == "p0"
    assert export(host, tmp_path / "p1")["level"] == "p1"  # the current level by default

    other_host.overrides["image"] = str(tmp_path / "p0")
    first = other_host.doit("run")
    assert first.returncode == 0, first.output
    assert other_host.get(f"templates/{R}-base", "thinjail:installed") == "p0"
    clone = other_host.mountpoint("containers/pg-1")
    assert (clone / "etc/rc").read_text() == rc

    other_host.publish_patch("p1", files={"etc/rc": "# rc p1\n"})
    other_host.overrides["image"] = str(tmp_path / "p1")
    run = other_host.doit("run")
    assert run.returncode == 0, run.output
    assert {f"image_import:{R}", "fstab:pg-1", "start:pg-1"} <= run.ran()
    assert not any(argv[0] == "freebsd-update" for argv in run.changing_commands())
    p1_base = f"templates/{R}/p1-base"
    assert other_host.get(p1_base, "thinjail:patch") == "p1"
    with pytest.raises(OSError, match="Read-only file system"):
        (other_host.mountpoint(p1_base) / "written-later").write_text("no")
    fstab = (other_host.mountpoint() / "pg-1-nullfs-base.fstab").read_text()
    assert fstab.splitlines()[1].split()[0] == str(other_host.mountpoint(p1_base))
    assert (clone / "etc/rc").read_text() == "# rc p1\n"  # merged on the move
    assert other_host.running() == {"pg-1"}
    assert other_host.doit("run").ran() == set()


def test_an_import_cut_off_between_its_receives_is_received_again(host: Host, other_host: Host,
                                                                   tmp_path: Path) -> None:
    """Killed after the skeleton's receive, before the base's, an import leaves a skeleton
    without a base: the rerun receives both again, instead of refusing the templates as
    someone else's."""
    assert host.doit("run", f"snapshot:{R}").returncode == 0
    export(host, tmp_path / "image")
    other_host.overrides["image"] = str(tmp_path / "image")
    assert other_host.doit("run", "host:datasets").returncode == 0
    skeleton = other_host.dataset(f"templates/{R}-skeleton")
    subprocess.run(f"xz -dc {tmp_path / 'image/skeleton.zfs.xz'} | zfs receive {skeleton}",
                   shell=True, check=True)

    run = other_host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    changes = [" ".join(argv) for argv in run.changing_commands()]
    receives = [i for i, c in enumerate(changes) if c.endswith(f"zfs receive {skeleton}")]
    assert receives and changes.index(f"zfs destroy -r {skeleton}") < receives[0], changes
    assert other_host.get(f"templates/{R}-base", "thinjail:patch") == "p0"
    assert other_host.running() == {"pg-1"}
    assert other_host.doit("run", "jail:pg-1").ran() == set()
