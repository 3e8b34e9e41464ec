"""Today's FreeBSD (November 2026): what a 14.4 or 15.1 host does that a 14.3-era one did not,
through doit on real ZFS with the fakes set to that version (tests/fakes/README.md)."""

from __future__ import annotations

import re
import shlex

import jailconf
import pytest
import yaml

from tasks.config import host_machine
from tests.support.host import FREEBSD_VERSIONS, RELEASE, REPO, Host, Run
from tests.support.mirror import Mirror, publish

EOL_RELEASE = "14.3-RELEASE"  # ended 2026-06-30


def build(host: Host, *args: str) -> None:
    run = host.doit("run", *args)
    assert run.returncode == 0, run.output


def freebsd_update_calls(run: Run) -> list[str]:
    return [c["argv"][-1] for c in run.calls if c["tool"] == "freebsd-update"]


# 1. Python packages -------------------------------------------------------------------------

def test_the_readme_installs_by_origin_for_the_default_python(host: Host) -> None:
    """The README's first command, the role's packages and the example inventory name no
    Python flavour; through pkg they install the default Python's packages."""
    readme = (REPO / "README.md").read_text()
    first = re.search(r"```sh\n(?:#.*\n)*(pkg install .*)\n", readme).group(1)
    install, _, run = first.partition(" && ")
    assert run == "doit jail:pg-1"  # the command devel/py-doit installs (USE_PYTHON=concurrent)
    defaults = yaml.safe_load((REPO / "deploy/ansible/roles/thinjail/defaults/main.yml")
                              .read_text())
    for words in (shlex.split(install)[3:], defaults["thinjail_packages"]):
        assert words and all("/" in w and not re.match(r"py3\d+-", w) for w in words), words
        host.fake_state.joinpath("packages/host").unlink(missing_ok=True)
        installed = host.fake("pkg", "install", "-y", *words)
        assert installed.returncode == 0, installed.stderr
        assert sorted((host.fake_state / "packages/host").read_text().split()) == [
            "py312-Jinja2", "py312-doit", "py312-pyyaml", "py312-tqdm",
            *(["python3"] if "lang/python3" in words else [])]
    for path in ("README.md", "deploy/ansible/inventory.example.yml",
                 "deploy/ansible/roles/thinjail/defaults/main.yml"):
        text = (REPO / path).read_text()
        assert not re.search(r"\bpy3\d\d-|python3\.\d+", text), path


# 2 and 3. End of life, kernel-only patch levels --------------------------------------------

@pytest.mark.builds_templates
def test_end_of_life_release_then_kernel_only_patch(host: Host) -> None:
    """On a 15.1 host: a release past its end of life builds, warns on every run and in
    status; a kernel-only patch is taken as freebsd-update reports it, restarts nothing, and
    the next run does nothing; a pin to that level holds."""
    host.overrides["release"] = EOL_RELEASE
    base = f"templates/{EOL_RELEASE}-base"
    first = host.doit("run", "jail:pg-1")
    assert first.returncode == 0, first.output
    assert host.running() == {"pg-1"}
    assert "update: warning: 14.3-RELEASE has passed its end of life: no security fixes " \
           "after Tue Jun 30 23:59:59 UTC 2026" in first.output
    assert host.get(base, "thinjail:eol") == "Tue Jun 30 23:59:59 UTC 2026"
    assert freebsd_update_calls(first) == ["fetch"]  # nothing fetched: no `install`

    second = host.doit("run", "jail:pg-1")
    assert second.returncode == 0 and second.ran() == set()
    assert second.changing_commands() == []
    assert "thinjail: warning: 14.3-RELEASE has passed its end of life" in second.output
    status = host.doit("run", "status").output.splitlines()
    header = next(i for i, line in enumerate(status) if line.startswith("JAIL"))
    assert status[header].split() == ["JAIL", "STATE", "IP", "RELEASE", "PATCH", "SUPPORT",
                                      "ORIGIN", "USED"]
    assert status[header + 1].split()[:6] == ["pg-1", "running", "192.168.7.111/24",
                                              EOL_RELEASE, "p0", "EOL"]
    assert any("warning: 14.3-RELEASE has passed its end of life" in line for line in status)

    host.publish_patch("p1", kernel_only=True)
    kernel = host.doit("run", "jail:pg-1")
    assert kernel.returncode == 0, kernel.output
    assert kernel.ran() == {f"update:{EOL_RELEASE}"}  # no restart: no file changed
    assert freebsd_update_calls(kernel) == ["fetch", "fetch"]  # the check, the step
    assert (host.get(base, "thinjail:patch"), host.get(base, "thinjail:installed")) == (
        "p1", "p0")
    settled = host.doit("run", "jail:pg-1")
    assert settled.ran() == set() and settled.changing_commands() == []

    host.overrides["patch"] = "p1"
    pinned = host.doit("run", "jail:pg-1")
    assert pinned.returncode == 0, pinned.output
    assert pinned.ran() == {f"update:{EOL_RELEASE}"} and freebsd_update_calls(pinned) == []
    assert host.doit("run", "jail:pg-1").ran() == set()


@pytest.mark.builds_templates
def test_end_of_life_release_still_installs_what_was_fetched(host: Host) -> None:
    host.overrides["release"] = EOL_RELEASE
    host.publish_patch("p2")
    run = host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    assert freebsd_update_calls(run) == ["fetch", "install"]
    base = f"templates/{EOL_RELEASE}-base"
    assert 'USERLAND_VERSION="14.3-RELEASE-p2"' in (
        host.mountpoint(base) / "bin/freebsd-version").read_text()
    assert (host.get(base, "thinjail:patch"), host.get(base, "thinjail:eol")[:3]) == (
        "p2", "Tue")


# 4. Bridges ----------------------------------------------------------------------------------

@pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)
def test_an_uplink_with_an_address(host: Host) -> None:
    """15.x refuses it before anything is created, with the rc.conf lines to move the
    address; 14.x bridges it and says what to change before an upgrade."""
    host.seed_host(inet=["192.168.7.10/24"])
    run = host.doit("run", "jail:pg-1")
    if host.freebsd == "14.4":
        assert run.returncode == 0, run.output
        assert host.interfaces()["igc0bridge"]["members"][0] == "igc0"
        assert "FreeBSD 15 refuses that for a bridge member" in run.output
        return
    assert run.returncode != 0
    assert run.results["host:bridge"] == "fail"
    for fragment in ("network.uplink igc0 carries 192.168.7.10/24, and FreeBSD 15 refuses",
                     "nothing was created", 'ifconfig_igc0="up"',
                     'cloned_interfaces="bridge0"', 'ifconfig_bridge0_name="igc0bridge"',
                     'ifconfig_igc0bridge="inet 192.168.7.10/24 addm igc0 up"',
                     "thinjail does not move the address itself"):
        assert fragment in run.output, fragment
    assert run.changing_commands() == [] and host.names() == []
    assert set(host.interfaces()) == {"igc0"}
    assert not (host.etc / "rc.conf").exists()


@pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)
def test_a_bridge_without_its_uplink_is_not_done(host: Host) -> None:
    """A bridge a failed `addm` left (created and named, no member) is completed."""
    host.seed_host()
    assert host.fake("ifconfig", "bridge", "create", "name", "igc0bridge", "up").returncode == 0
    run = host.doit("run", "host:bridge")
    assert run.returncode == 0 and run.ran() == {"host:bridge"}, run.output
    assert ["ifconfig", "igc0bridge", "addm", "igc0", "up"] in run.changing_commands()
    assert host.interfaces()["igc0bridge"]["members"] == ["igc0"]
    assert host.doit("run", "host:bridge").ran() == set()


# 5. devfs ruleset, DHCP ----------------------------------------------------------------------

def test_an_unloaded_devfs_ruleset_stops_the_start_and_dhcp_works(host: Host) -> None:
    host.jails = {"dhcp": {"id": 114, "ip": "dhcp", "devfs_ruleset": 10}}
    refused = host.doit("run", "jail:dhcp")
    assert refused.returncode != 0
    assert "devfs ruleset 10 of jail dhcp is not loaded" in refused.output
    assert "/etc/devfs.rules" in refused.output
    assert not any(c["tool"] == "jail" for c in refused.calls) and host.running() == set()

    # The README's DHCP ruleset, loaded as `service devfs restart` would.
    for rule in (["include", "5"], ["path", "bpf*", "unhide"]):
        assert host.fake("devfs", "rule", "-s", "10", "add", *rule).returncode == 0
    build(host, "jail:dhcp")
    conf = jailconf.load(str(host.etc / "jail.conf.d/dhcp.conf"))["dhcp"]
    assert "$ip" not in conf
    assert conf["exec.start"] == ['"dhclient ${epair}b"', '"/bin/sh /etc/rc"']
    assert host.running() == {"dhcp"}  # the fake jail ran dhclient: bpf is visible


# 6. An epair a failed start leaves --------------------------------------------------------

def test_start_removes_its_own_leftover_epair(host: Host) -> None:
    host.seed_host()
    host.fake("ifconfig", "epair111", "create", "descr", "jail:pg-1", "up")
    run = host.doit("run", "jail:pg-1")
    assert run.returncode == 0, run.output
    calls = [c["argv"] for c in run.calls if c["tool"] in ("ifconfig", "jail")]
    assert calls.index(["ifconfig", "epair111a", "destroy"]) < calls.index(
        ["jail", "-f", str(host.etc / "jail.conf.d/pg-1.conf"), "-c", "pg-1"])
    assert host.running() == {"pg-1"}


def test_a_failed_start_leaves_no_epair(host: Host) -> None:
    build(host)
    build(host, "stop:pg-1")
    rc = host.mountpoint("containers/pg-1") / "etc/rc"
    rc.rename(rc.with_name("rc.away"))  # the jail's own /etc/rc is gone: exec.start fails
    failed = host.doit("run", "jail:pg-1")
    assert failed.returncode != 0
    assert "jail: pg-1: /bin/sh /etc/rc: failed" in failed.output
    assert "(the epair111 it left was removed)" in failed.output
    interfaces = host.interfaces()
    assert not {"epair111a", "epair111b"} & set(interfaces)
    assert interfaces["igc0bridge"]["members"] == ["igc0"]
    rc.with_name("rc.away").rename(rc)
    build(host)
    assert host.running() == {"pg-1"}


# 7. Architecture ------------------------------------------------------------------------------

@pytest.mark.builds_templates
def test_another_architecture_is_never_updated(host: Host, mirror: Mirror) -> None:
    other = "arm64" if host_machine() == "amd64" else "amd64"
    host.overrides["arch"] = other
    latest = host.doit("run", "jail:pg-1")
    assert latest.returncode != 0
    assert f"arch: {other} is not this host's architecture ({host_machine()})" in latest.output
    assert latest.commands == [] and host.names() == []

    # A pinned template of that architecture is built as published; updating it is refused.
    source = mirror.root / "amd64/amd64" / RELEASE
    publish(mirror.root, source / "base.txz", source / "MANIFEST", RELEASE,
            "arm64/aarch64" if other == "arm64" else "amd64/amd64")
    host.overrides["patch"] = "p0"
    build(host, "jail:pg-1")
    host.overrides["patch"] = "p2"
    refused = host.doit("run", "jail:pg-1")
    assert refused.returncode != 0
    assert "freebsd-update always installs the host's own files" in refused.output
    assert freebsd_update_calls(refused) == []


# 8. Boot uses the file start:J uses ---------------------------------------------------------

@pytest.mark.parametrize("host", FREEBSD_VERSIONS, indirect=True)
def test_boot_starts_every_jail_from_its_own_conf(host: Host) -> None:
    elsewhere = host.tmp / "thinjail-etc"
    host.overrides["paths"] = {"jail_conf": str(elsewhere / "jail.conf"),
                               "jail_conf_d": str(elsewhere / "jail.conf.d"),
                               "rc_conf": str(host.etc / "rc.conf")}
    host.jails["dev"] = {"id": 112}
    build(host)

    def reboot() -> None:
        """rc.d/jail stops every jail at shutdown and starts jail_list at boot."""
        host.fake("service", "jail", "stop")
        assert host.running() == set()
        host.fake("service", "jail", "start")

    reboot()
    assert host.running() == {"pg-1", "dev"}
    for name in ("pg-1", "dev"):
        started = (host.fake_state / "running" / name).read_text()
        assert f'"conf": "{elsewhere}/jail.conf.d/{name}.conf"' in started
    assert host.doit("run").ran() == set()

    # Without jail_<name>_conf, rc.d/jail finds no file for them (what this fixes)...
    host.fake("service", "jail", "stop")
    host.fake("sysrc", "-f", str(host.etc / "rc.conf"), "-x", "jail_pg_1_conf", "jail_dev_conf")
    boot = host.fake("service", "jail", "start")
    assert "Invalid configuration for pg-1" in boot.stderr and host.running() == set()
    # ... and the next run puts them back; destroy takes its own out.
    repaired = host.doit("run")
    assert {"rc:pg-1", "rc:dev", "start:pg-1", "start:dev"} <= repaired.ran()
    build(host, "destroy:dev")
    values = (host.etc / "rc.conf").read_text()
    assert "jail_pg_1_conf=" in values and "jail_dev_conf" not in values
    reboot()
    assert host.running() == {"pg-1"}


# 10. Host users ---------------------------------------------------------------------------

def test_jail_roots_and_clones_stay_private(host: Host) -> None:
    build(host, "jail:pg-1")
    root = host.mountpoint()
    root.chmod(0o755)
    run = host.doit("run", "jail:pg-1")
    assert run.ran() == {"host:datasets"}
    assert root.stat().st_mode & 0o777 == 0o700
