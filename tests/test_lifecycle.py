"""Jail lifecycle through doit: host settings and bridge, stop/restart, status, removal to
the trash, orphans, VNET details and first-boot provisioning."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path

import jailconf
import pytest

from tasks.config import Jail
from tasks.steps.rcconf import read_rc_vars
from tests.support import zfspool
from tests.support.host import FREEBSD_VERSIONS, RELEASE, Host
from tests.support.jail_params import unknown_parameters

# Every test here runs on a stand-in FreeBSD 14.4 host and on a 15.1 one.
pytestmark = pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)


def build(host: Host, *args: str) -> None:
    run = host.doit("run", *args)
    assert run.returncode == 0, run.output


def rc_vars(host: Host) -> dict[str, str]:
    return read_rc_vars(host.etc / "rc.conf")


def test_host_settings_and_bridge_are_created_and_persisted(host: Host) -> None:
    build(host)
    values = rc_vars(host)
    assert {k: values[k] for k in ("jail_enable", "jail_parallel_start", "jail_reverse_stop")} \
        == dict.fromkeys(("jail_enable", "jail_parallel_start", "jail_reverse_stop"), "YES")
    # A named bridge is a renamed bridgeN unit, at boot too.
    assert values["cloned_interfaces"] == "bridge0"
    assert values["ifconfig_bridge0_name"] == "igc0bridge"
    assert values["ifconfig_igc0bridge"] == "addm igc0 up"
    assert host.interfaces()["igc0bridge"]["up"] is True


def test_existing_bridge_is_only_persisted(host: Host) -> None:
    host.overrides["network"] = {"bridge": "bridge3", "subnet": "192.168.7.0/24",
                                 "gateway": "192.168.7.101"}
    host.seed_host()
    assert host.fake("ifconfig", "bridge3", "create", "up").returncode == 0
    run = host.doit("run", "host:bridge")
    assert run.returncode == 0, run.output
    queries = (["ifconfig", "-a"], ["jls", "name"])  # a run asks both as it starts
    assert [c["argv"][0] for c in run.calls if c["argv"] not in queries] == ["sysrc"]
    values = rc_vars(host)
    assert (values["cloned_interfaces"], values["ifconfig_bridge3"]) == ("bridge3", "up")


def test_stop_is_idempotent_and_leaves_no_epair(host: Host) -> None:
    build(host)
    assert "epair111a" in host.interfaces()
    stop = host.doit("run", "stop:pg-1")
    assert stop.returncode == 0, stop.output
    assert host.running() == set()
    interfaces = host.interfaces()
    assert not {"epair111a", "epair111b"} & set(interfaces)
    assert interfaces["igc0bridge"]["members"] == ["igc0"]
    again = host.doit("run", "stop:pg-1")
    assert again.returncode == 0 and again.ran() == set()
    assert not any(c["tool"] == "jail" for c in again.calls)
    # The next `doit` starts it again, with a fresh epair.
    build(host)
    assert host.running() == {"pg-1"} and host.interfaces()["epair111b"]["vnet"] == "pg-1"


def test_restart_and_a_changed_conf_restart_only_that_jail(host: Host) -> None:
    host.jails["dev"] = {"id": 112}
    build(host)
    restart = host.doit("run", "restart:pg-1")
    assert restart.returncode == 0, restart.output
    assert [c["argv"][3:] for c in restart.calls if c["tool"] == "jail"] == [["-rc", "pg-1"]]

    host.jails["pg-1"] = {"id": 111, "ip": "192.168.7.50/24"}
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert run.ran() == {"conf:pg-1", "start:pg-1"}
    assert [c["argv"][3:] for c in run.calls if c["tool"] == "jail"] == [["-rc", "pg-1"]]
    assert host.running() == {"pg-1", "dev"}
    assert host.doit("run").ran() == set()


def test_a_hand_edited_fstab_restarts_its_jail(host: Host) -> None:
    build(host)
    # An edit of the same size, in the same second as the build's write (zfs-fuse keeps
    # whole seconds): seen all the same.
    fstab = host.mountpoint() / "pg-1-nullfs-base.fstab"
    fstab.write_text(fstab.read_text().replace("in mount order", "in MOUNT ORDER"))
    run = host.doit("run")
    assert run.ran() == {"start:pg-1"}, run.output
    assert [c["argv"][3:] for c in run.calls if c["tool"] == "jail"] == [["-rc", "pg-1"]]
    assert host.doit("run").ran() == set()
    # A record in the form thinjail wrote for a while still counts: nothing restarts.
    record = host.state_dir / "started/pg-1"
    record.write_text(json.dumps({"digest": record.read_text()}))
    assert host.doit("run").ran() == set()


def test_stop_and_restart_tasks_are_made_when_named(host: Host) -> None:
    """A run makes them only when a task of theirs is named; `doit list` shows each."""
    build(host)
    listing = host.report("list", "--all")
    assert {"stop:pg-1", "restart:pg-1"} <= set(listing.stdout.split()), listing.stdout
    run = host.doit("run")
    assert not any(name.startswith(("stop", "restart")) for name in run.results)
    stop = host.doit("run", "stop")
    assert stop.returncode == 0 and host.running() == set(), stop.output


def test_status_lists_every_jail(host: Host) -> None:
    host.jails["dev"] = {"id": 112}
    build(host)
    build(host, "stop:dev")
    status = host.doit("run", "status")
    assert status.returncode == 0, status.output
    lines = [line.split() for line in status.output.splitlines() if line.strip()]
    header = lines.index(["JAIL", "STATE", "IP", "RELEASE", "PATCH", "SUPPORT", "ORIGIN",
                          "USED"])
    rows = {row[0]: row for row in lines[header + 1:header + 3]}
    origin = host.get("containers/pg-1", "origin").rsplit("/", 1)[1]
    assert rows["pg-1"][:7] == ["pg-1", "running", "192.168.7.111/24", RELEASE, "p0", "yes",
                                origin]
    assert rows["dev"][1] == "stopped"
    assert re.fullmatch(r"[0-9.]+[BKMG]", rows["dev"][-1])


def test_destroy_moves_to_trash_and_purge_destroys(host: Host) -> None:
    build(host)
    host.jails.update({"dev": {"id": 112}, "web": {"id": 113}})
    build(host)
    assert rc_vars(host)["jail_list"] == "pg-1 dev web"  # appended as they were created
    (host.mountpoint("containers/dev") / "root/notes.txt").write_text("keep\n")
    origin = host.get("containers/dev", "origin")

    run = host.doit("run", "destroy:dev")
    assert run.returncode == 0, run.output
    assert host.running() == {"pg-1", "web"}
    assert not {"epair112a", "epair112b"} & set(host.interfaces())
    assert rc_vars(host)["jail_list"] == "pg-1 web"  # stable order
    assert not (host.etc / "jail.conf.d/dev.conf").exists()
    assert not (host.mountpoint() / "dev-nullfs-base.fstab").exists()
    assert not (host.mountpoint() / "dev-nullfs-base").exists()
    assert not host.exists("containers/dev")
    trash = [n for n in host.names() if n.startswith(host.dataset("trash/dev-"))]
    assert len(trash) == 1
    assert zfspool.zfs_get(trash[0], "origin") == origin
    notes = Path(zfspool.zfs_get(trash[0], "mountpoint"), "root/notes.txt")
    assert notes.read_text() == "keep\n"
    assert not any(argv[:2] == ["zfs", "destroy"] for argv in run.changing_commands())

    # Nothing but an explicit purge destroys; `doit destroy` alone is no task at all.
    assert host.doit("run", "destroy").returncode != 0
    purge = host.doit("run", "purge")
    assert purge.returncode == 0, purge.output
    assert not any(n.startswith(host.dataset("trash/dev-")) for n in host.names())
    assert host.exists("containers/pg-1") and host.exists("containers/web")


def test_a_jail_removed_from_config_is_an_orphan_and_kept(host: Host) -> None:
    host.jails["web"] = {"id": 113}
    build(host)
    del host.jails["web"]
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert "orphan: jail web is not in config.yaml" in run.output
    assert "doit destroy:web" in run.output
    assert host.exists("containers/web") and host.running() == {"pg-1", "web"}
    assert run.changing_commands() == []
    # It can still be removed by name.
    assert host.doit("run", "destroy:web").returncode == 0
    assert not host.exists("containers/web") and host.running() == {"pg-1"}
    assert host.doit("run").ran() == set()


def test_vnet_details_stable_mac_ruleset_and_parameters(host: Host) -> None:
    host.overrides["devfs_ruleset"] = 4
    host.overrides["network"] = {"bridge": "igc0bridge", "uplink": "igc0",
                                 "subnet": "192.168.7.0/24", "gateway": "192.168.7.101",
                                 "stable_mac": True}
    host.jails.update({"dhcp": {"id": 114, "devfs_ruleset": 10, "allow_mount": True}})
    host.fake("devfs", "rule", "-s", "10", "add", "include", "5")  # /etc/devfs.rules has it
    build(host)
    interfaces = host.interfaces()
    pg1 = Jail(name="pg-1", id=111, ip=ipaddress.IPv4Interface("192.168.7.111/24"))
    assert interfaces["epair111a"]["ether"] == pg1.mac("a")
    assert interfaces["epair111b"]["ether"] == pg1.mac("b")
    assert pg1.mac("b").startswith("02:") and pg1.mac("a") != pg1.mac("b")
    # Every rendered parameter is one jail(8) knows on FreeBSD 14, parsed independently.
    for name, ruleset in (("pg-1", "4"), ("dhcp", "10")):
        conf = jailconf.load(str(host.etc / f"jail.conf.d/{name}.conf"))
        params = dict(conf[name])
        assert unknown_parameters(set(params), "14.4") == set()
        assert params["devfs_ruleset"] == ruleset
    assert "allow.mount" in dict(jailconf.load(str(host.etc / "jail.conf.d/dhcp.conf"))["dhcp"])


def test_first_boot_provisioning(host: Host) -> None:
    host.jails["pg-1"] = {"id": 111, "packages": ["postgresql16-server", "curl"],
                          "services": ["postgresql"]}
    build(host)
    clone = host.mountpoint("containers/pg-1")
    packages = sorted(json.loads((clone / "var/db/pkg/local.json").read_text()))
    assert packages == ["curl", "postgresql16-server"]  # in the jail's own database
    assert 'postgresql_enable="YES"' in (clone / "etc/rc.conf").read_text()
    assert (host.fake_state / "services/pg-1").read_text().split() == ["postgresql"]
    again = host.doit("run")
    assert again.ran() == set() and not any(c["tool"] == "pkg" for c in again.calls)

    host.jails["pg-1"]["packages"].append("git")
    run = host.doit("run")
    assert run.returncode == 0, run.output
    assert run.ran() == {"provision:pg-1"}
    assert [c["argv"] for c in run.calls if c["tool"] == "pkg"] == [
        ["pkg", "-j", "pg-1", "install", "-y", "postgresql16-server", "curl", "git"]]
    # postgresql runs already: it is not started twice.
    assert [c["argv"][-1] for c in run.calls if c["tool"] == "service"] == ["status"]
