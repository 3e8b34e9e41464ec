"""The fake FreeBSD commands behave as FreeBSD does, failures and version differences
included (tests/fakes/README.md names the sources). A fake kinder than FreeBSD would let a
defect through every other test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.host import FREEBSD_VERSIONS, Host


def stand_in(tmp_path: Path, freebsd: str = "15.1") -> Host:
    """A host for the fakes alone (no ZFS)."""
    host = Host(pool="", root="", tmp=tmp_path, mirror_url="", freebsd=freebsd)
    host.etc.mkdir(exist_ok=True)
    host.seed_host()
    return host


def template(tmp_path: Path, version: str) -> Path:
    tree = tmp_path / "template"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin/freebsd-version").write_text(f'USERLAND_VERSION="{version}"\n')
    (tmp_path / "work").mkdir()
    return tree


def freebsd_update(host: Host, tree: Path, release: str, *commands: str):
    return host.fake("env", "PAGER=cat", "freebsd-update", "-b", str(tree), "-d",
                     str(host.tmp / "work"), "--currently-running", release,
                     "--not-running-from-cron", *commands)


def userland(tree: Path) -> str:
    return (tree / "bin/freebsd-version").read_text()


def test_freebsd_update_past_end_of_life_fetches_warns_and_exits_1(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    tree = template(tmp_path, "14.3-RELEASE-p1")
    (host.fake_state / "latest-patch").write_text("p2")
    both = freebsd_update(host, tree, "14.3-RELEASE", "fetch", "install")
    assert both.returncode == 1
    assert "WARNING: FreeBSD 14.3-RELEASE HAS PASSED ITS END-OF-LIFE DATE." in both.stdout
    assert "updating to 14.3-RELEASE-p2" in " ".join(both.stdout.split())
    assert "Installing" not in both.stdout and "p1" in userland(tree)  # install never ran
    # What was fetched is still ready: a separate install installs it.
    alone = freebsd_update(host, tree, "14.3-RELEASE", "install")
    assert alone.returncode == 0, alone.stdout
    assert 'USERLAND_VERSION="14.3-RELEASE-p2"' in userland(tree)


def test_freebsd_update_install_with_nothing_fetched_exits_1(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    tree = template(tmp_path, "15.1-RELEASE")
    alone = freebsd_update(host, tree, "15.1-RELEASE", "install")
    assert alone.returncode == 1
    assert alone.stdout.splitlines() == ["No updates are available to install.",
                                         "Run '/usr/sbin/freebsd-update fetch' first."]
    # In one call after a fetch that found nothing, install exits 0 (ISFETCHED).
    both = freebsd_update(host, tree, "15.1-RELEASE", "fetch", "install")
    assert both.returncode == 0, both.stdout
    assert "No updates needed to update system to 15.1-RELEASE-p0." in both.stdout


def test_freebsd_update_kernel_only_level_leaves_userland_behind(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    tree = template(tmp_path, "15.1-RELEASE-p1")
    (host.fake_state / "latest-patch").write_text("p3")
    (host.fake_state / "kernel-only-patches").write_text("p3\n")
    fetch = freebsd_update(host, tree, "15.1-RELEASE", "fetch")
    assert "updating to 15.1-RELEASE-p3" in " ".join(fetch.stdout.split())
    assert freebsd_update(host, tree, "15.1-RELEASE", "install").returncode == 0
    assert 'USERLAND_VERSION="15.1-RELEASE-p2"' in userland(tree)  # p3 changed no file here
    again = freebsd_update(host, tree, "15.1-RELEASE", "fetch")
    assert again.returncode == 0
    assert "No updates needed to update system to 15.1-RELEASE-p3." in again.stdout


def patch_file(host: Host, level: str, path: str, text: str) -> None:
    """FreeBSD's version of `path` from patch level `level` on (p0: as released)."""
    target = host.fake_state / "patch-files" / level / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def test_freebsd_update_updates_only_files_present_through_links(tmp_path: Path) -> None:
    """fetch_inspect_system's `[ -e ${BASEDIR}/${F} ]`: a file under a link that does not
    resolve on the host is "not present" and skipped; under one that does, it is updated
    where the link leads. A file changed locally under /etc is left and listed."""
    host = stand_in(tmp_path)
    tree = template(tmp_path, "15.1-RELEASE")
    skeleton = tmp_path / "skeleton-dataset"
    for directory in (tree / "usr/share/keys", skeleton / "etc/ssl/certs", tree / "skeleton"):
        directory.mkdir(parents=True)
    (tree / "etc").symlink_to("skeleton/etc")  # as after thinjail's split: dangling here
    for path, text in (("etc/rc", "rc p0\n"), ("etc/ssl/certs/ca.pem", "ca p0\n"),
                       ("etc/motd.template", "motd p0\n"), ("usr/share/keys/k", "k p0\n")):
        patch_file(host, "p0", path, text)
        (skeleton / path if path.startswith("etc/") else tree / path).write_text(text)
    patch_file(host, "p1", "etc/rc", "rc p1\n")
    patch_file(host, "p2", "etc/rc", "rc p2\n")
    patch_file(host, "p2", "etc/ssl/certs/ca.pem", "ca p2\n")
    patch_file(host, "p2", "etc/motd.template", "motd p2\n")
    patch_file(host, "p2", "usr/share/keys/k", "k p2\n")
    (host.fake_state / "latest-patch").write_text("p2")

    missed = freebsd_update(host, tree, "15.1-RELEASE", "fetch", "install")
    assert missed.returncode == 0, missed.stdout
    assert "/etc/rc" not in missed.stdout and "/usr/share/keys/k" in missed.stdout
    assert (tree / "usr/share/keys/k").read_text() == "k p2\n"
    assert (skeleton / "etc/rc").read_text() == "rc p0\n"  # the patch never reached /etc
    assert 'USERLAND_VERSION="15.1-RELEASE-p2"' in userland(tree)

    # With the skeleton where the links lead, /etc is patched, except a file changed locally.
    (tree / "bin/freebsd-version").write_text('USERLAND_VERSION="15.1-RELEASE"\n')
    (tree / "skeleton").rmdir()
    (tree / "skeleton").symlink_to(skeleton)  # stands for the skeleton mounted there
    (skeleton / "etc/motd.template").write_text("our own motd\n")
    reached = freebsd_update(host, tree, "15.1-RELEASE", "fetch", "install")
    assert reached.returncode == 0, reached.stdout
    assert "modified\nlocally:\n/etc/motd.template" in reached.stdout
    assert (skeleton / "etc/rc").read_text() == "rc p2\n"
    assert (skeleton / "etc/ssl/certs/ca.pem").read_text() == "ca p2\n"
    assert (skeleton / "etc/motd.template").read_text() == "our own motd\n"
    assert (tree / "etc").is_symlink() and (tree / "skeleton").is_symlink()  # not replaced


def test_freebsd_update_refuses_without_a_terminal_or_pager(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    tree = template(tmp_path, "15.1-RELEASE")
    (host.fake_state / "latest-patch").write_text("p1")
    cron = host.fake("freebsd-update", "-b", str(tree), "-d", str(host.tmp / "work"),
                     "--currently-running", "15.1-RELEASE", "fetch")
    assert cron.returncode == 1 and "should not be run non-interactively" in cron.stdout
    paged = host.fake("freebsd-update", "-b", str(tree), "-d", str(host.tmp / "work"),
                      "--currently-running", "15.1-RELEASE", "--not-running-from-cron",
                      "fetch")
    assert paged.returncode == 1 and "page its report" in paged.stderr


def test_pkg_installs_origins_for_the_default_python_and_refuses_a_stale_flavour(
        tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    stale = host.fake("pkg", "install", "-y", "py311-doit")
    assert stale.returncode == 1
    assert "No packages available to install matching 'py311-doit' have been found in the " \
           "repositories" in stale.stderr
    assert host.fake("pkg", "install", "-y", "devel/py-doit@py311").returncode == 1
    by_origin = host.fake("pkg", "install", "-y", "devel/py-doit", "misc/py-tqdm")
    assert by_origin.returncode == 0, by_origin.stderr
    assert (host.fake_state / "packages/host").read_text().split() == ["py312-doit",
                                                                       "py312-tqdm"]


def test_pkg_on_a_fresh_host_bootstraps_only_when_told_yes(tmp_path: Path) -> None:
    """pkg(7) on a host without pkg(8) (usr.sbin/pkg/pkg.c): `-N` reports, anything else asks
    and, with no terminal, fails; ASSUME_ALWAYS_YES bootstraps, then the command runs."""
    host = stand_in(tmp_path)
    localbase = tmp_path / "localbase"
    env = {**host.env(), "LOCALBASE": str(localbase), "THINJAIL_FAKE_PYTHON": sys.executable}

    def pkg(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["pkg", *args], capture_output=True, text=True,
                              env={**env, **extra}, stdin=subprocess.DEVNULL)

    checked = pkg("-N")
    assert (checked.returncode, checked.stderr.strip()) == (1, "pkg: pkg is not installed")
    asked = pkg("install", "-y", "lang/python3")
    assert asked.returncode == 1 and asked.stdout.endswith("[y/N]: ")
    assert not localbase.exists() and not (host.fake_state / "packages").exists()
    done = pkg("install", "-y", "lang/python3", ASSUME_ALWAYS_YES="yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Bootstrapping pkg from pkg+https://pkg.FreeBSD.org/"
                                  "FreeBSD:15:amd64/quarterly, please wait...")
    assert (localbase / "sbin/pkg").is_file()
    python = subprocess.run([str(localbase / "bin/python3"), "-c", "print('hi')"],
                            capture_output=True, text=True)
    assert python.stdout == "hi\n"
    assert pkg("query", "%o").stdout.split() == ["ports-mgmt/pkg", "lang/python3"]


@pytest.mark.parametrize("freebsd", FREEBSD_VERSIONS)
def test_ifconfig_bridge_member_with_an_address(tmp_path: Path, freebsd: str) -> None:
    host = stand_in(tmp_path, freebsd)
    interfaces = host.interfaces()
    interfaces["igc0"]["inet"] = ["192.168.7.10/24"]
    host.set_interfaces(interfaces)
    created = host.fake("ifconfig", "bridge", "create", "name", "igc0bridge", "addm", "igc0",
                        "up")
    bridge = host.interfaces()["igc0bridge"]  # created and renamed before addm, either way
    if freebsd == "15.1":
        assert created.returncode == 1
        assert created.stderr.strip() == "ifconfig: BRDGADD igc0: Invalid argument"
        assert bridge["members"] == []
    else:
        assert created.returncode == 0, created.stderr
        assert bridge["members"] == ["igc0"]
    shown = host.fake("ifconfig", "-a").stdout
    assert "igc0: flags=8843<UP," in shown and "\tinet 192.168.7.10 netmask 0xffffff00" in shown


def test_ifconfig_epair_units_and_leftovers(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    assert host.fake("ifconfig", "epair32768", "create").stderr.strip() == \
        "ifconfig: SIOCIFCREATE2 (epair32768): Invalid argument"
    assert host.fake("ifconfig", "epair7", "create", "up").stdout.strip() == "epair7a"
    again = host.fake("ifconfig", "epair7", "create", "up")
    assert (again.returncode, again.stderr.strip()) == (
        1, "ifconfig: SIOCIFCREATE2 (epair7): File exists")
    # 15.x derives an epair's MAC addresses from its name: the same after a re-create.
    mac = host.interfaces()["epair7a"]["ether"]
    host.fake("ifconfig", "epair7a", "destroy")
    host.fake("ifconfig", "epair7", "create")
    assert host.interfaces()["epair7a"]["ether"] == mac and mac.startswith("58:9c:fc:")


def test_devfs_shows_nothing_for_a_ruleset_that_is_not_loaded(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    vnet = host.fake("devfs", "rule", "-s", "5", "show")
    assert vnet.returncode == 0 and vnet.stdout.splitlines()[-1] == "500 path pf unhide"
    missing = host.fake("devfs", "rule", "-s", "10", "show")
    assert (missing.returncode, missing.stdout) == (0, "")


def test_sysrc_refuses_a_name_a_shell_cannot_have(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    rc_conf = host.etc / "rc.conf"
    bad = host.fake("sysrc", "-f", str(rc_conf), "jail_pg-1_conf=/x")
    assert bad.returncode == 1 and "name contains characters not allowed in shell" in bad.stderr
    assert host.fake("sysrc", "-f", str(rc_conf), "jail_pg_1_conf=/x").returncode == 0
    assert host.fake("sysrc", "-f", str(rc_conf), "-x", "jail_pg_1_conf").returncode == 0
    assert "jail_pg_1_conf" not in rc_conf.read_text()


def write_jail(host: Host, conf: Path, name: str, jid: int) -> None:
    root = host.tmp / f"{name}-root"
    for directory in ("bin", "sbin", "etc", "dev"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    (root / "bin/sh").write_text("ELF sh")  # a program: jail(8) runs exec.start with it
    (root / "sbin/ifconfig").write_text("ifconfig")
    (root / "etc/rc").write_text("# rc")
    fstab = host.tmp / f"{name}.fstab"
    fstab.write_text("")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(f'{name} {{ path = "{root}"; mount.fstab = "{fstab}"; vnet; '
                    f'vnet.interface = "epair{jid}b"; '
                    f'exec.prestart = "ifconfig epair{jid} create up"; '
                    f'exec.start = "ifconfig epair{jid}b up"; exec.start += "/bin/sh /etc/rc"; '
                    f'exec.poststop = "ifconfig epair{jid}a destroy"; }}\n')


@pytest.mark.parametrize("freebsd", FREEBSD_VERSIONS)
def test_rc_d_jail_picks_one_file_by_version(tmp_path: Path, freebsd: str) -> None:
    """Default paths, a jail.conf that includes jail.conf.d/, no jail_<name>_conf: 14.x
    starts from jail.conf.d/<name>.conf, 15.x from jail.conf; jail_<name>_conf wins on both."""
    host = stand_in(tmp_path, freebsd)
    write_jail(host, host.etc / "jail.conf.d/web-1.conf", "web-1", 7)
    (host.etc / "jail.conf").write_text(f'.include "{host.etc}/jail.conf.d/*.conf";\n')
    (host.etc / "rc.conf").write_text('jail_enable="YES"\njail_list="web-1"\n')

    def booted_from() -> str:
        boot = host.fake("service", "jail", "start")
        assert "web-1." in boot.stdout, boot.stdout + boot.stderr
        started = json.loads((host.fake_state / "running/web-1").read_text())["conf"]
        assert host.fake("service", "jail", "stop", "web-1").returncode == 0
        return started

    expected = "jail.conf" if freebsd == "15.1" else "jail.conf.d/web-1.conf"
    assert booted_from() == str(host.etc / expected)
    own = host.tmp / "elsewhere/web-1.conf"
    write_jail(host, own, "web-1", 7)
    with (host.etc / "rc.conf").open("a") as rc_conf:
        rc_conf.write(f'jail_web_1_conf="{own}"\n')
    assert booted_from() == str(own)


def test_jail_leaks_the_epair_when_create_fails_after_prestart(tmp_path: Path) -> None:
    """jail(8) undoes a failed create back to front but never runs exec.poststop."""
    host = stand_in(tmp_path)
    conf = host.etc / "web.conf"
    write_jail(host, conf, "web", 9)
    (host.tmp / "web-root/etc/rc").unlink()  # exec.start's /bin/sh /etc/rc cannot run
    failed = host.fake("jail", "-f", str(conf), "-c", "web")
    assert failed.returncode == 1
    assert "jail: web: /bin/sh /etc/rc: failed" in failed.stderr
    interfaces = host.interfaces()
    assert {"epair9a", "epair9b"} <= set(interfaces)  # left behind, both ends on the host
    assert interfaces["epair9b"]["vnet"] is None
    assert not (host.fake_state / "running/web").exists()
    again = host.fake("jail", "-f", str(conf), "-c", "web")
    assert "SIOCIFCREATE2 (epair9): File exists" in again.stderr


@pytest.mark.parametrize(("freebsd", "accepted"), [("14.4", False), ("15.1", True)])
def test_jail_refuses_parameters_its_version_does_not_know(tmp_path: Path, freebsd: str,
                                                           accepted: bool) -> None:
    host = stand_in(tmp_path, freebsd)
    conf = host.etc / "z.conf"
    write_jail(host, conf, "z", 3)
    conf.write_text(conf.read_text().replace("vnet;", 'vnet; zfs.dataset = "tank/z";'))
    result = host.fake("jail", "-f", str(conf), "-c", "z")
    assert (result.returncode == 0) == accepted, result.stderr
    if not accepted:
        assert result.stderr.strip() == "jail: unknown parameter: zfs.dataset"


def test_freebsd_version(tmp_path: Path) -> None:
    assert stand_in(tmp_path, "14.4").fake("freebsd-version", "-r").stdout == "14.4-RELEASE\n"


def test_jexec_needs_a_running_jail_and_the_program_in_it(tmp_path: Path) -> None:
    host = stand_in(tmp_path)
    missing = host.fake("jexec", "pg-1", "/usr/sbin/certctl", "rehash")
    assert (missing.returncode, missing.stderr) == (1, 'jexec: jail "pg-1" not found\n')
    base, clone = tmp_path / "base", tmp_path / "clone"
    for directory in (base / "bin", base / "usr/share/certs/trusted", clone / "etc/ssl/certs"):
        directory.mkdir(parents=True)
    (base / "etc").symlink_to("skeleton/etc")
    (base / "bin/freebsd-version").write_text('USERLAND_VERSION="14.4-RELEASE-p1"\n')
    (base / "usr/share/certs/trusted/A.pem").write_text("A\n")
    (clone / "etc/ssl/certs/stale.0").symlink_to("../../../../usr/share/certs/trusted/Old.pem")
    fstab = tmp_path / "fstab"
    fstab.write_text(f"{base} /j nullfs ro 0 0\n{clone} /j/skeleton nullfs rw 0 0\n")
    (host.fake_state / "running").mkdir(exist_ok=True)
    (host.fake_state / "running/pg-1").write_text(json.dumps({"name": "pg-1",
                                                              "fstab": str(fstab)}))
    absent = host.fake("jexec", "pg-1", "/usr/sbin/certctl", "rehash")
    assert (absent.returncode, absent.stderr) == (
        1, "jexec: execvp: /usr/sbin/certctl: No such file or directory\n")
    (base / "usr/sbin").mkdir()
    (base / "usr/sbin/certctl").write_text("ELF certctl\n")
    assert host.fake("jexec", "1", "/usr/sbin/certctl", "rehash").returncode == 0  # by jid
    # 14.x: every old link is gone, each trusted certificate linked relative to the real
    # /skeleton/etc/ssl/certs.
    linked = {p.name: p.readlink() for p in (clone / "etc/ssl/certs").iterdir()}
    assert list(linked.values()) == [Path("../../../../usr/share/certs/trusted/A.pem")]
