"""Templates from FreeBSD's base packages (`source: pkgbase`): built with pkg from a local
repository of synthetic FreeBSD-* packages (tests/support/pkgbase_repo.py, read by the fake
pkg), its signature checked, the base's package database kept with the base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.host import RELEASE as R
from tests.support.host import Host
from tests.support.jailview import resolve
from tests.support.mirror import Mirror
from tests.support.pkgbase_repo import KEY, OTHER_KEY, base_packages, keys_dir, publish

pytestmark = pytest.mark.builds_templates

BASE, SKELETON = f"templates/{R}-pkgbase-base", f"templates/{R}-pkgbase-skeleton"
OLDER = "14.4-RELEASE"


def pkgbase_host(host: Host, signed: bool = True) -> Path:
    """Point the host's config at a local pkgbase mirror; return the repository."""
    mirror = host.tmp / "pkgbase-mirror"
    repo = publish(mirror, R, base_packages(R), key=KEY if signed else None)
    host.overrides.update(source="pkgbase", pkgbase_mirror=f"file://{mirror}",
                          pkgbase_keys=str(keys_dir(host.tmp / "keys")))
    return repo


def test_a_pkgbase_template_builds_and_a_second_run_does_nothing(host: Host,
                                                                   mirror: Mirror) -> None:
    pkgbase_host(host)
    host.jails["pg-1"]["packages"] = ["nginx"]
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert mirror.requests == []  # no base.txz
    assert not [c for c in run.calls if c["tool"] == "freebsd-update"]
    base_root = host.mountpoint(BASE)
    installs = [argv for argv in run.changing_commands()
                if argv[0] == "pkg" and "--rootdir" in argv]
    assert installs == [[
        "pkg", "--rootdir", str(base_root), "--repo-conf-dir",
        str(host.mountpoint("media") / f"pkgbase/{R}/repos"), "-o", "ABI=FreeBSD:15:amd64",
        "-o", "OSVERSION=1501000", "-o", f"PKG_DBDIR={base_root}/usr/share/pkgbase/db",
        "-o", f"PKG_CACHEDIR={host.mountpoint('media')}/pkgbase/{R}/cache",
        "install", "-y", "FreeBSD-set-minimal-jail"]]
    conf = (host.mountpoint("media") / f"pkgbase/{R}/repos/FreeBSD-base.conf").read_text()
    assert f'url: "file://{host.tmp}/pkgbase-mirror/${{ABI}}/base_release_1"' in conf
    assert 'signature_type: "fingerprints"' in conf
    assert host.get(BASE, "thinjail:patch") == "p0"
    assert host.get(BASE, "thinjail:installed") == "p0"

    # The base's package database stays with the base: plain `pkg --rootdir <base> info`
    # finds it through var/db/pkg; a jail's own /var/db/pkg has none of it.
    info = host.fake("pkg", "--rootdir", str(base_root), "info")
    assert info.returncode == 0 and "FreeBSD-runtime-15.1" in info.stdout.split()
    # `pkg -j pg-1 install nginx` worked (pkg read the ABI from the jail's /usr/bin/uname,
    # from the base), and the jail's database holds nginx alone.
    clone = host.mountpoint("containers/pg-1")
    jail_path, host_dir = resolve(base_root, clone, "/var/db/pkg")
    assert jail_path == "/skeleton/var/db/pkg"
    assert list(json.loads((host_dir / "local.json").read_text())) == ["nginx"]
    assert not (host.mountpoint(SKELETON) / "var/db/pkg/local.json").exists()
    assert "nginx" not in " ".join(host.fake("pkg", "--rootdir", str(base_root), "info").stdout)
    assert host.running() == {"pg-1"}

    again = host.doit("run")
    assert again.returncode == 0 and again.ran() == set(), again.output
    assert again.changing_commands() == []


def test_an_unsigned_or_wrongly_signed_repository_is_refused(host: Host) -> None:
    repo = pkgbase_host(host)
    (repo / "signature.json").unlink()
    unsigned = host.doit("run")
    assert unsigned.returncode != 0
    assert "pkg: No signature found" in unsigned.output
    assert not host.exists(BASE) or host.get(BASE, "thinjail:extract") == "-"

    publish(repo.parents[1], R, base_packages(R), key=OTHER_KEY)
    wrong = host.doit("run")
    assert wrong.returncode != 0 and "pkg: No trusted certificate found" in wrong.output

    host.overrides["pkgbase_keys"] = str(host.tmp / "no-keys")
    missing = host.doit("run")
    assert missing.returncode != 0
    assert f"{host.tmp}/no-keys/trusted does not exist" in missing.output
    assert not [c for c in missing.calls if c["tool"] == "pkg"]  # said before pkg runs

    # Only in so many words: an unsigned repository one trusts.
    (repo / "signature.json").unlink()
    host.overrides["signature"] = "none"
    trusted = host.doit("run")
    assert trusted.returncode == 0, trusted.output
    assert host.running() == {"pg-1"}


def test_base_txz_and_pkgbase_releases_side_by_side(host: Host) -> None:
    pkgbase_host(host)
    host.jails["old"] = {"id": 112, "release": OLDER}
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert host.exists(f"templates/{OLDER}-base") and host.exists(BASE)
    assert not host.exists(f"templates/{R}-base")
    assert host.get("containers/old", "origin").startswith(
        host.dataset(f"templates/{OLDER}-skeleton@"))
    assert host.get("containers/pg-1", "origin").startswith(host.dataset(f"{SKELETON}@"))
    assert host.running() == {"pg-1", "old"}
    assert host.doit("run").ran() == set()


def test_a_new_package_version_is_a_new_level_and_the_jails_move(host: Host) -> None:
    """The level is FreeBSD-runtime's version. A newer one in the repository makes the
    next level beside the current one: a clone upgraded with `pkg upgrade` while its
    skeleton is mounted, so the packages' /etc files reach it; the jails move to it."""
    repo = pkgbase_host(host)
    assert host.doit("run").returncode == 0
    publish(repo.parents[1], R, base_packages(R, 2, {"etc/rc": "# rc 15.1p2\n"}))
    run = host.doit("run", "check_updates=1")
    assert run.returncode == 0, run.output
    level_base = f"templates/{R}-pkgbase/p2-base"
    assert host.get(level_base, "thinjail:patch") == "p2"
    assert host.get(level_base, "origin") == host.dataset(f"{BASE}@level-p2")
    upgrades = [argv for argv in run.changing_commands() if argv[0] == "pkg"]
    assert [argv[-2:] for argv in upgrades] == [["upgrade", "-y"]]
    assert upgrades[0][2] == str(host.mountpoint(level_base))
    assert (host.mountpoint(f"templates/{R}-pkgbase/p2-skeleton") / "etc/rc").read_text() \
        == "# rc 15.1p2\n"
    assert (host.mountpoint("containers/pg-1") / "etc/rc").read_text() == "# rc 15.1p2\n"
    fstab = (host.mountpoint() / "pg-1-nullfs-base.fstab").read_text()
    assert fstab.splitlines()[1].split()[0] == str(host.mountpoint(level_base))
    info = host.fake("pkg", "--rootdir", str(host.mountpoint(level_base)), "info")
    assert "FreeBSD-runtime-15.1p2" in info.stdout.split()
    assert host.running() == {"pg-1"}
    assert host.doit("run").ran() == set()

    # The next one is asked of a read-only level: on a copy of its database (pkg fetches
    # no catalogue into a database it cannot write, and would answer from an old one).
    publish(repo.parents[1], R, base_packages(R, 3, {"etc/rc": "# rc 15.1p3\n"}))
    p3 = host.doit("run", "check_updates=1")
    assert p3.returncode == 0, p3.output
    assert host.get(f"templates/{R}-pkgbase/p3-base", "origin") == \
        host.dataset(f"{level_base}@level-p3")
    assert (host.mountpoint("containers/pg-1") / "etc/rc").read_text() == "# rc 15.1p3\n"
    host.jails["pg-1"]["patch"] = "p2"
    assert host.doit("run").returncode == 0  # back to p2 for the rollback below

    # Rollback works the same: back to p0, /etc as it was when pg-1 left p0.
    host.jails["pg-1"]["patch"] = "p0"
    back = host.doit("run", "rollback:pg-1")
    assert back.returncode == 0, back.output
    fstab = (host.mountpoint() / "pg-1-nullfs-base.fstab").read_text()
    assert fstab.splitlines()[1].split()[0] == str(host.mountpoint(BASE))
    assert (host.mountpoint("containers/pg-1") / "etc/rc").read_text() == "# /etc/rc\n"
    assert host.doit("run").ran() == set()


def test_moving_a_release_to_pkgbase_builds_a_new_base_and_moves_its_jails(host: Host) -> None:
    """base.txz -> pkgbase never converts a base in place: the pkgbase base is built beside
    the old one, and the release's jails move to it the rolling way, /etc merged."""
    assert host.doit("run").returncode == 0
    old_base = f"templates/{R}-base"
    clone = host.mountpoint("containers/pg-1")
    guid = host.get("containers/pg-1", "guid")
    (clone / "root/notes.txt").write_text("precious\n")
    pkgbase_host(host)
    publish(host.tmp / "pkgbase-mirror", R,
            base_packages(R, 0, {"etc/rc": "# rc from the packages\n"}))
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert host.exists(old_base) and host.exists(BASE)  # beside, not in place
    assert not [argv for argv in run.changing_commands()
                if argv[0] == "zfs" and argv[-1].endswith(old_base)]
    fstab = (host.mountpoint() / "pg-1-nullfs-base.fstab").read_text()
    assert fstab.splitlines()[1].split()[0] == str(host.mountpoint(BASE))
    assert (clone / "etc/rc").read_text() == "# rc from the packages\n"  # merged
    assert (clone / "root/notes.txt").read_text() == "precious\n"
    assert host.get("containers/pg-1", "guid") == guid
    assert [c["argv"][-2:] for c in run.calls if c["tool"] == "jail"] == [["-rc", "pg-1"]]
    assert host.running() == {"pg-1"}
    assert host.doit("run").ran() == set()


def test_a_pkgbase_image_lands_only_where_the_config_wants_pkgbase(
        host: Host, other_host: Host, tmp_path: Path) -> None:
    pkgbase_host(host)
    export = host.doit("run", "image", f"image_dir={tmp_path / 'image'}")
    assert export.returncode == 0, export.output
    manifest = json.loads((tmp_path / "image/manifest.json").read_text())
    assert (manifest["source"], manifest["level"]) == ("pkgbase", "p0")

    other_host.overrides["image"] = str(tmp_path / "image")
    refused = other_host.doit("run")
    assert refused.returncode != 0
    assert "was built from pkgbase, the config wants base.txz" in refused.output
    assert not other_host.exists(f"templates/{R}-base")

    pkgbase_host(other_host)
    imported = other_host.doit("run")
    assert imported.returncode == 0, imported.output
    assert f"image_import:{R}" in imported.ran()
    assert not [argv for argv in imported.changing_commands()
                if argv[0] == "pkg" and "install" in argv]
    assert other_host.running() == {"pg-1"}
    assert other_host.doit("run").ran() == set()
