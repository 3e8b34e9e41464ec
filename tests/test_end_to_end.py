"""End to end through doit on real ZFS: `doit jail:pg-1` builds a VNET thin jail, a second
run does nothing, and upstream changes never touch a jail's dataset."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jailconf
import pytest

from tests.support import zfspool
from tests.support.freebsd_base import CERT_HASHES
from tests.support.host import FREEBSD_VERSIONS, RELEASE, REPO, Host
from tests.support.jailview import resolve

JAIL_TASKS = ("clone", "fstab", "conf", "rc", "start")
RELEASE_TASKS = ("fetch", "extract", "tzdns", "update", "skeleton", "certs", "snapshot")

# Every test here runs on a stand-in FreeBSD 14.4 host and on a 15.1 one.
pytestmark = pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)


def jail_tasks(name: str) -> set[str]:
    return {f"{task}:{name}" for task in JAIL_TASKS}


def build(host: Host) -> None:
    first = host.doit("run", "jail:pg-1")
    assert first.returncode == 0, first.output


@pytest.mark.builds_templates
def test_first_run_builds_a_vnet_thin_jail(host: Host) -> None:
    run = host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    expected = {*(f"{t}:{RELEASE}" for t in RELEASE_TASKS), *jail_tasks("pg-1"),
                "host:datasets", "host:rc", "host:bridge", "jail_conf"}
    assert run.ran() == expected

    for relative in ("media", "templates", "containers", f"templates/{RELEASE}-base",
                     f"templates/{RELEASE}-skeleton", "containers/pg-1"):
        assert host.exists(relative), relative
    base, skeleton = host.mountpoint(f"templates/{RELEASE}-base"), host.mountpoint(
        f"templates/{RELEASE}-skeleton")
    clone = host.mountpoint("containers/pg-1")

    # The base holds the extracted system and links into skeleton/, nothing else of etc/var.
    assert (base / "bin/freebsd-version").is_file()
    assert (base / "skeleton").is_dir() and not any((base / "skeleton").iterdir())
    links = {"etc": "skeleton/etc", "root": "skeleton/root", "tmp": "skeleton/tmp",
             "var": "skeleton/var", "home": "skeleton/home",
             "usr/local": "../skeleton/usr/local"}
    for link, target in links.items():
        assert (base / link).is_symlink() and (base / link).readlink() == Path(target), link
    leftovers = [p.name for p in base.iterdir() if "thinjail" in p.name or p.name.endswith(".bak")]
    assert leftovers == []
    # The skeleton holds the writable parts, var/empty included, and no var/var.
    for relative in ("etc/rc", "root/.cshrc", "tmp", "var/empty", "var/db", "usr/local/etc",
                     "home"):
        assert (skeleton / relative).exists(), relative
    assert not (skeleton / "var/var").exists()
    # The time zone is a link into the shared base (tzdata errata reach every jail), and
    # DNS was copied into the template, and so into the jail.
    assert (clone / "etc/localtime").readlink() == Path("/usr/share/zoneinfo/Asia/Shanghai")
    assert resolve(base, clone, "/etc/localtime")[1].read_text() == "TZif2 CST-8\n"
    assert (clone / "var/db/zoneinfo").read_text() == "Asia/Shanghai\n"
    assert (clone / "etc/resolv.conf").read_text() == "nameserver 192.168.7.1\n"

    # Every cert link resolves, in the jail's view, to its usr/share/certs/trusted file.
    for cert, hashed in CERT_HASHES.items():
        jail_path, host_file = resolve(base, clone, f"/etc/ssl/certs/{hashed}")
        assert jail_path == f"/usr/share/certs/trusted/{cert}.pem"
        assert host_file.read_text() == f"-----BEGIN CERTIFICATE----- {cert}\n"
    # Absolute and same-directory links were left as they were, and still resolve.
    assert (clone / "etc/termcap").readlink() == Path("/usr/share/misc/termcap")
    assert resolve(base, clone, "/etc/termcap")[1].read_text() == "# termcap\n"
    assert (clone / "etc/rc.conf.sample").readlink() == Path("rc")

    # Stamps: written by each step on its dataset; the patch level is recorded.
    base_ds, skel_ds = f"templates/{RELEASE}-base", f"templates/{RELEASE}-skeleton"
    for key in ("extract", "tzdns", "update", "skeleton"):
        assert len(host.get(base_ds, f"thinjail:{key}")) == 16, key
    for key in ("skeleton", "certs"):
        assert len(host.get(skel_ds, f"thinjail:{key}")) == 16, key
    assert host.get(base_ds, "thinjail:patch") == "p0"
    # The jail is a clone of the skeleton snapshot.
    origin = host.get("containers/pg-1", "origin")
    assert origin.startswith(host.dataset(f"{skel_ds}@base-"))
    assert origin in host.names()

    # Rendered files: fstab mounts base read-only, then the clone at /skeleton read-write.
    root_mp = host.mountpoint()
    jail_root = root_mp / "pg-1-nullfs-base"
    fstab = (root_mp / "pg-1-nullfs-base.fstab").read_text().splitlines()
    assert fstab[1].split() == [str(base), str(jail_root), "nullfs", "ro", "0", "0"]
    assert fstab[2].split() == [str(clone), f"{jail_root}/skeleton", "nullfs", "rw", "0", "0"]
    assert jail_root.is_dir()
    conf = jailconf.load(str(host.etc / "jail.conf.d/pg-1.conf"))["pg-1"]
    assert conf["$ip"] == '"192.168.7.111/24"'
    assert conf["$epair"] == '"epair111"'
    assert conf["path"] == f'"{jail_root}"'
    assert conf["mount.fstab"] == f'"{root_mp}/pg-1-nullfs-base.fstab"'
    assert conf["enforce_statfs"] == "1"
    assert "allow.mount" not in conf
    # Network before rc: the address and route come first in exec.start.
    assert conf["exec.start"] == ['"ifconfig ${epair}b ${ip} up"',
                                  '"route add default ${gateway}"', '"/bin/sh /etc/rc"']
    # The common jail.conf sets nothing itself and includes the per-jail files, so
    # `jail -f jail.conf -c pg-1` and rc.d's `jail -f jail.conf.d/pg-1.conf` get the same.
    common = (host.etc / "jail.conf").read_text()
    assert f'.include "{host.etc}/jail.conf.d/*.conf";' in common
    assert dict(jailconf.loads(common.replace(".include", "# .include"))) == {}
    rc_conf = (host.etc / "rc.conf").read_text()
    assert 'jail_enable="YES"' in rc_conf and 'jail_list="pg-1"' in rc_conf
    # Boot starts pg-1 from the file start:pg-1 uses, whatever rc.d/jail would pick.
    assert f'jail_pg_1_conf="{host.etc}/jail.conf.d/pg-1.conf"' in rc_conf
    # Unprivileged host users cannot reach the jail roots or the clones.
    assert (root_mp.stat().st_mode & 0o777, host.mountpoint("containers").stat().st_mode
            & 0o777) == (0o700, 0o700)

    # freebsd-update got the options a non-interactive template update needs, its work
    # directory is the release's own in the media dataset (no clone carries its downloads),
    # and with nothing to install (p0 is the latest) `install` never ran.
    updates = [c for c in run.calls if c["tool"] == "freebsd-update"]
    workdir = host.mountpoint("media") / "freebsd-update" / RELEASE
    assert [c["argv"][1:] for c in updates] == [
        ["-b", str(base), "-d", str(workdir), "--currently-running", RELEASE,
         "--not-running-from-cron", "fetch"]]
    assert updates[0]["pager"] == "cat" and workdir.is_dir()
    assert not (clone / "var/db/freebsd-update").exists() or not any(
        (clone / "var/db/freebsd-update").iterdir())
    # The fake jail(8) parsed the conf, found path and fstab sources, ran the prestart hooks
    # and moved the epair's b end into pg-1, which runs.
    assert host.running() == {"pg-1"}
    interfaces = host.interfaces()
    assert interfaces["igc0bridge"]["members"] == ["igc0", "epair111a"]
    assert interfaces["epair111a"]["descr"] == "jail:pg-1"
    assert interfaces["epair111b"]["vnet"] == "pg-1"
    assert 'ifconfig_igc0bridge="addm igc0 up"' in rc_conf


def test_second_run_does_nothing(host: Host) -> None:
    build(host)
    again = host.doit("run", "jail:pg-1")
    assert again.returncode == 0, again.output
    assert again.results and again.ran() == set()
    assert again.changing_commands() == []
    # Only questions: which jails run, which patch level freebsd-update offers, which
    # interfaces exist.
    assert sorted(c["argv"][0] + " " + c["argv"][-1] for c in again.calls) == [
        "freebsd-update fetch", "ifconfig -a", "jls name"]
    zfs_reads = [c for c in again.commands if c["argv"][:2] == ["zfs", "get"]]
    assert len(zfs_reads) == 1  # one listing per run


def test_adding_a_jail_runs_only_its_tasks(host: Host) -> None:
    build(host)
    guid = host.get("containers/pg-1", "guid")
    conf = host.etc / "jail.conf.d/pg-1.conf"
    conf_mtime = conf.stat().st_mtime_ns
    host.jails["dev"] = {"id": 253, "ip": "192.168.7.253/24"}
    run = host.doit("run")  # `doit` alone builds every jail
    assert run.returncode == 0, run.output
    assert run.ran() == jail_tasks("dev")
    assert host.get("containers/pg-1", "guid") == guid
    assert conf.stat().st_mtime_ns == conf_mtime
    assert host.get("containers/dev", "origin") == host.get("containers/pg-1", "origin")
    assert host.running() == {"pg-1", "dev"}
    assert 'jail_list="pg-1 dev"' in (host.etc / "rc.conf").read_text()
    assert all("dev" in " ".join(argv) for argv in run.changing_commands())


def test_dataset_destroyed_by_hand_is_recreated(host: Host) -> None:
    build(host)
    zfspool.run("zfs", "destroy", host.dataset("containers/pg-1"), retry_busy=True)
    run = host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    assert run.ran() == {"clone:pg-1"}
    assert host.exists("containers/pg-1")
    assert (host.mountpoint("containers/pg-1") / "etc/rc").is_file()


@pytest.mark.builds_templates
def test_jail_data_survives_template_and_skeleton_changes(host: Host, tmp_path: Path) -> None:
    # The admin's own checkout, whose templates they edit.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO / "dodo.py", checkout)
    for tree in ("tasks", "templates"):
        shutil.copytree(REPO / tree, checkout / tree,
                        ignore=shutil.ignore_patterns("__pycache__"))
    host.repo = checkout
    build(host)
    clone = host.mountpoint("containers/pg-1")
    (clone / "root/notes.txt").write_text("precious\n")
    guid, origin = host.get("containers/pg-1", "guid"), host.get("containers/pg-1", "origin")

    template = checkout / "templates/jail.j2"
    template.write_text(template.read_text().replace("\tallow.raw_sockets;\n",
                                                     "\tallow.raw_sockets;\n\tpersist;\n"))
    host.overrides["timezone"] = "UTC"  # a skeleton input
    (host.tmp / "resolv.conf").write_text("nameserver 192.168.7.2\n")
    host.jails["dev"] = {"id": 112}
    # `doit info` names what changed.
    host.write_config()
    info = host.report("info", f"tzdns:{RELEASE}").stdout
    assert ("timezone: Asia/Shanghai -> UTC; zone_file: Asia/Shanghai -> UTC; "
            "resolv_conf_content: ") in info, info
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert {f"tzdns:{RELEASE}", f"snapshot:{RELEASE}", "conf:pg-1"} <= run.ran()
    assert not {"clone:pg-1", f"extract:{RELEASE}", f"skeleton:{RELEASE}"} & run.ran()
    assert not any(argv[:2] == ["zfs", "destroy"] for argv in run.changing_commands())

    assert host.get("containers/pg-1", "guid") == guid
    assert host.get("containers/pg-1", "origin") == origin
    assert (clone / "root/notes.txt").read_text() == "precious\n"
    # pg-1's /etc is its own: still its zone
    assert (clone / "etc/localtime").readlink() == Path("/usr/share/zoneinfo/Asia/Shanghai")
    assert "persist;" in (host.etc / "jail.conf.d/pg-1.conf").read_text()
    # New jails get the new skeleton through a new snapshot; the old one stays for pg-1.
    new_origin = host.get("containers/dev", "origin")
    assert new_origin != origin and origin in host.names()
    dev = host.mountpoint("containers/dev")
    base = host.mountpoint(f"templates/{RELEASE}-base")
    assert resolve(base, dev, "/etc/localtime")[1].read_text() == "TZif2 UTC\n"
    assert (dev / "etc/resolv.conf").read_text() == "nameserver 192.168.7.2\n"
    assert host.doit("run").ran() == set()


@pytest.mark.builds_templates
def test_checksum_mismatch_fails_fetch_and_nothing_looks_complete(host: Host) -> None:
    host.overrides["mirror"] = f"{host.mirror_url}/bad"
    run = host.doit("run", "jail:pg-1")
    assert run.returncode != 0
    assert "sha256" in run.output and "MANIFEST" in run.output
    assert run.results.get(f"fetch:{RELEASE}") == "fail"
    media = host.mountpoint("media")
    assert list(media.iterdir()) == []  # no archive, no .part
    base = f"templates/{RELEASE}-base"
    assert not host.exists(base)
    assert not any("@" in name for name in host.names())
    assert host.running() == set()

    host.overrides.pop("mirror")
    fixed = host.doit("run", "jail:pg-1")
    assert fixed.returncode == 0, fixed.output
    assert host.running() == {"pg-1"}


@pytest.mark.builds_templates
def test_dry_run_prints_the_plan_and_changes_nothing(host: Host) -> None:
    run = host.doit("run", "jail:pg-1", "dry_run=1")
    assert run.returncode == 0, run.output
    for planned in ("[dry-run] would create the parent datasets",
                    f"[dry-run] would download {host.mirror_url}/amd64/amd64/{RELEASE}/base.txz",
                    "[dry-run] would freebsd-update", "[dry-run] would clone",
                    "[dry-run] would start pg-1: jail -f"):
        assert planned in run.output
    assert run.changing_commands() == []
    assert sorted(" ".join(c["argv"]) for c in run.calls) == ["ifconfig -a", "jls name"]
    assert host.names() == [] and not host.etc.joinpath("jail.conf").exists()
    # The dry-run recorded nothing as done: the next dry-run plans the same, the real run
    # does everything.
    assert host.doit("run", "jail:pg-1", "dry_run=1").ran() == run.ran()
    real = host.doit("run", "jail:pg-1")
    assert real.returncode == 0, real.output
    assert f"extract:{RELEASE}" in real.ran() and host.running() == {"pg-1"}
    # After a config change, every dry-run shows the conf it would rewrite (not the restart
    # that follows: start compares the conf file, which a dry-run leaves as it is).
    host.jails["pg-1"]["allow_mount"] = True
    for _ in range(2):
        assert host.doit("run", "jail:pg-1", "dry_run=1").ran() == {"conf:pg-1"}


@pytest.mark.builds_templates
def test_doit_list_explains_every_task(host: Host) -> None:
    host.write_config()
    listing = subprocess.run(
        [sys.executable, "-m", "doit", "list", "-f", str(REPO / "dodo.py"),
         f"config={host.config_path}"], capture_output=True, text=True, env=host.env(),
        cwd=host.tmp, check=True).stdout
    docs = dict(line.split(maxsplit=1) for line in listing.splitlines())
    assert set(docs) == {"host", *RELEASE_TASKS, "jail_conf", *JAIL_TASKS, "provision", "jail",
                         "rollback", "stop", "restart", "destroy:pg-1", "purge", "orphans",
                         "status", "image"}
    assert all(len(doc) > 10 for doc in docs.values())
