"""The collection thinjail.jails drives stand-in jail hosts on this machine
(tests/support/fleet.py): rollouts in canary batches, what comes back (check-mode plans, jail
facts, orphan warnings, failures), dependencies by origin, the host's lock, the previous
version kept until the new one has run, and packing under `strategy: free`."""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tasks.config import parse_config
from tests.support.collection import COLLECTION, collections_path
from tests.support.fleet import (
    BOOTSTRAP_TASK,
    INSTALL_TASK,
    PLAYBOOK,
    RENDER_TASK,
    ROLE,
    RUN_TASK,
    Fleet,
    call_count,
    calls,
    doit_span,
    fake_environment,
    log_length,
)
from tests.support.host import FAKES, RELEASE, REPO, Host
from tests.support.ssh import CONTROLLER_USER, SshServer, ssh_server

EXAMPLE_INVENTORY = COLLECTION / "inventory.example.yml"
# What pkg installs for the role's origins: the flavour of the ports tree's default Python.
HOST_PACKAGES = ["py312-Jinja2", "py312-doit", "py312-pyyaml", "py312-tqdm", "python3"]
ORIGINS = ["lang/python3", "devel/py-doit", "devel/py-pyyaml", "devel/py-Jinja2", "misc/py-tqdm"]
# The canary alone, then every other host at once.
CANARY_THEN_ALL = {"thinjail_serial": [1, "100%"]}


def test_fleet_runs_each_host_and_reports_like_doit(host: Host, other_host: Host,
                                                      third_host: Host, tmp_path: Path) -> None:
    other_host.jails = {"web-1": {"id": 21}}
    third_host.jails = {"db-1": {"id": 31}, "db-2": {"id": 32}}
    fleet = Fleet(tmp_path / "ansible", {"alpha": host, "beta": other_host,
                                         "gamma": third_host})
    names = {"alpha": host, "beta": other_host, "gamma": third_host}

    # --check --diff on new hosts: everything would change, the plan comes back as the diff,
    # nothing is made.
    preview = fleet.play("--check", "--diff")
    assert preview.returncode == 0, preview.output
    assert {h: r["status"] for h, r in preview.doit().items()} == dict.fromkeys(names,
                                                                                 "changed")
    for h in names.values():
        assert not h.config_path.exists() and not (h.tmp / "thinjail").exists()
        assert not h.exists("containers") and not (h.fake_state / "packages").exists()
        assert [argv for argv in calls(h, "pkg") if argv[1] in ("update", "install")] == []

    first = fleet.play()
    assert first.returncode == 0, first.output
    assert {h: r["status"] for h, r in first.doit().items()} == dict.fromkeys(names, "changed")
    assert "start:pg-1" in first.doit()["alpha"]["ran"]
    assert host.running() == {"pg-1"} and other_host.running() == {"web-1"}
    assert third_host.running() == {"db-1", "db-2"}
    assert host.exists("containers/pg-1") and not host.exists("containers/web-1")
    for h in names.values():
        assert (h.fake_state / "packages" / "host").read_text().split() == HOST_PACKAGES
        assert yaml.safe_load(h.config_path.read_text()) == h.config()
        # Installed by origin once, the catalogue fetched by that install.
        update, install = [argv[1:] for argv in calls(h, "pkg")
                           if argv[1] in ("update", "install")]
        assert update == ["update"] and install[:4] == ["install", "-g", "-U", "-y"]
        assert sorted(install[4:]) == sorted(ORIGINS)
        # doit ran from the version's own directory; `current` points at it.
        release = next((h.tmp / "thinjail" / "releases").iterdir())
        assert (h.tmp / "thinjail" / "current").resolve() == release
    assert {r["doit_version"] for r in first.doit().values()} == {"0.37.0"}
    # The jails come back as facts: name, state, address, release, patch level, support.
    facts = {h: {j["name"]: j for j in r["jails"]} for h, r in first.doit().items()}
    assert facts["gamma"].keys() == {"db-1", "db-2"}
    pg1 = facts["alpha"]["pg-1"]
    assert pg1 == {
        "name": "pg-1", "state": "running", "ip": "192.168.7.111/24", "release": RELEASE,
        "patch": "p0", "eol": None,
        "origin": host.get("containers/pg-1", "origin").rsplit("/", 1)[1],
        "used": pg1["used"]}
    assert isinstance(pg1["used"], int)  # bytes, as zfs reports them (a new clone: 0)

    seen = {name: log_length(h) for name, h in names.items()}
    pkg_seen = {name: call_count(h) for name, h in names.items()}
    # The canary alone, then the rest at once (Ansible forks), each with its own doit.
    second = fleet.play(extra=CANARY_THEN_ALL)
    assert second.returncode == 0, second.output
    assert second.changed() == {name: [] for name in names}
    assert {h: (r["status"], r["ran"]) for h, r in second.doit().items()} == dict.fromkeys(
        names, ("ok", []))
    for name, h in names.items():
        new = [json.loads(line) for line in
               (h.state_dir / "commands.log").read_text().splitlines()[seen[name]:]]
        assert [c["argv"] for c in new if c["changes"]] == []
        # No catalogue refresh, no install: one read of the installed packages.
        assert calls(h, "pkg", pkg_seen[name]) == [["pkg", "query", "%o"]]
    (_, a_end), (b_start, b_end), (c_start, c_end) = (
        doit_span(h, seen[name]) for name, h in names.items())
    assert a_end < b_start and a_end < c_start and b_start < c_end and c_start < b_end

    # A new jail in one host's inventory: --check --diff shows the plan, changes nothing...
    host.jails["dev"] = {"id": 112}
    check = fleet.play("--check", "--diff")
    assert check.returncode == 0, check.output
    alpha = check.doit()["alpha"]
    assert alpha["status"] == "changed"
    assert {"clone:dev", "start:dev"} <= set(alpha["ran"])
    plan = alpha["diff"]["prepared"].splitlines()
    assert plan[0] == f"thinjail plan ({host.config_path}):"
    assert any(line.startswith("clone:dev: would ") for line in plan), plan
    assert any(line.startswith("start:dev: would ") for line in plan), plan
    assert "start:dev: would " in check.output  # the diff is what the play prints
    assert check.doit()["beta"]["status"] == "ok"
    assert not host.exists("containers/dev") and "dev" not in host.config_path.read_text()
    # ... and the real run changes that host only.
    added = fleet.play()
    assert added.returncode == 0, added.output
    assert set(added.doit()["alpha"]["ran"]) == {"clone:dev", "fstab:dev", "conf:dev",
                                                "rc:dev", "start:dev"}
    assert added.changed() == {"alpha": [RENDER_TASK, RUN_TASK], "beta": [], "gamma": []}
    assert host.running() == {"pg-1", "dev"}

    # A jail taken out of the inventory is kept, and reported as a warning, not a change.
    del host.jails["dev"]
    orphaned = fleet.play()
    assert orphaned.returncode == 0, orphaned.output
    alpha = orphaned.doit()["alpha"]
    assert (alpha["status"], alpha["ran"]) == ("ok", [])
    assert any(w.startswith("orphan: jail dev ") for w in alpha["warnings"]), alpha
    assert {j["name"]: j["state"] for j in alpha["jails"]} == {"pg-1": "running",
                                                               "dev": "orphan"}
    assert host.exists("containers/dev") and host.running() == {"pg-1", "dev"}

    # A failing step fails that host with the doit task and its one-line message.
    other_host.jails = {"web-1": {"id": 21}, "web-2": {"id": 22, "release": "14.4-RELEASE"}}
    other_host.overrides["mirror"] = f"{other_host.mirror_url}/bad"
    failing = fleet.play(extra={"thinjail_serial": "100%", "thinjail_max_fail_percentage": 50})
    beta = failing.doit()["beta"]
    assert beta["status"] == "failed", failing.output
    assert beta["msg"].startswith("fetch:14.4-RELEASE: fetch: "), beta["msg"]
    assert "HTTP 404" in beta["msg"]
    assert failing.doit()["alpha"]["status"] == "ok"
    assert failing.doit()["gamma"]["status"] == "ok"
    assert other_host.running() == {"web-1"}


def test_dependencies_install_by_origin_through_a_failing_mirror(host: Host,
                                                                  tmp_path: Path) -> None:
    """community.general.pkgng installs what is missing, retried while the mirror fails; a
    mirror that stays down fails the host with pkg's message."""
    fleet = Fleet(tmp_path / "ansible", {"alpha": host})
    host.fake_state.mkdir(parents=True, exist_ok=True)
    (host.fake_state / "pkg-update-failures").write_text("9")
    down = fleet.play(extra={"thinjail_pkg_retries": 1})
    install = down.of(INSTALL_TASK)["alpha"]
    assert install["status"] == "failed", down.output
    assert "Could not update catalogue" in install["msg"]
    assert "meta.conf: Connection refused" in install["msg"]
    assert [argv[1] for argv in calls(host, "pkg") if argv[1] in ("update", "install")] == [
        "update", "update"]  # one try and one retry
    assert not (host.fake_state / "packages").exists() and not host.config_path.exists()
    (host.fake_state / "pkg-update-failures").write_text("2")
    seen = call_count(host)
    flaky = fleet.play()
    assert flaky.returncode == 0, flaky.output
    assert [argv[1] for argv in calls(host, "pkg", seen) if argv[1] in ("update", "install")] \
        == ["update", "update", "update", "install"]
    assert (host.fake_state / "packages" / "host").read_text().split() == HOST_PACKAGES
    assert host.running() == {"pg-1"}


def test_a_fresh_host_gets_pkg_and_python_before_any_module(host: Host,
                                                            tmp_path: Path) -> None:
    """FreeBSD as installed: pkg never used, no Python, so no module can run. raw installs
    lang/python3 (pkg(7) bootstrapping pkg first), the modules then run under that Python and
    the jails come up; the next play installs nothing."""
    localbase = host.tmp / "localbase"  # the fresh host's /usr/local
    python = localbase / "bin/python3"
    fleet = Fleet(tmp_path / "ansible", {"alpha": host}, per_host={"alpha": {
        "ansible_python_interpreter": str(python), "thinjail_python": str(python),
        "thinjail_environment": {**fake_environment(host), "LOCALBASE": str(localbase),
                                 "THINJAIL_FAKE_PYTHON": sys.executable}}})
    played = fleet.play()
    assert played.returncode == 0, played.output
    assert played.of(BOOTSTRAP_TASK)["alpha"]["status"] == "changed"
    pkg = [argv[1:] for argv in calls(host, "pkg")]
    assert pkg[0] == ["install", "-y", "lang/python3"]  # the first command, pkg(7) first
    assert (localbase / "sbin/pkg").is_file() and os.access(python, os.X_OK)
    assert (host.fake_state / "packages" / "host").read_text().split() == HOST_PACKAGES
    assert host.running() == {"pg-1"}

    seen = call_count(host)
    again = fleet.play()
    assert again.returncode == 0, again.output
    assert again.of(BOOTSTRAP_TASK)["alpha"]["status"] == "ok"
    assert [argv[1] for argv in calls(host, "pkg", seen)] == ["query"]


def test_a_run_past_its_timeout_fails_and_the_next_converges(host: Host,
                                                               tmp_path: Path) -> None:
    """The run is async with a time limit: past it the host fails (Ansible stops the job) and
    the next play finishes what it left."""
    fleet = Fleet(tmp_path / "ansible", {"alpha": host})
    cut = fleet.play(extra={"thinjail_timeout": 1, "thinjail_poll": 1})
    run = cut.doit()["alpha"]
    assert run["status"] == "failed", cut.output
    # Either side may notice first, the controller's poll loop (executor/task_executor.py)
    # or the host's async_wrapper; the wrapper kills the run at the limit either way.
    assert run["msg"] == "Timeout exceeded" or run["msg"].startswith(
        "async task did not complete within the requested time"), run["msg"]
    assert not (host.tmp / "thinjail" / "current").exists()  # not current before it ran
    done = fleet.play()
    assert done.returncode == 0, done.output
    assert host.running() == {"pg-1"} and (host.tmp / "thinjail" / "current").exists()


def new_version(source: Path) -> Path:
    """A checkout of another thinjail version: this one's files, one comment added."""
    source.mkdir()
    for member in ("dodo.py", "tasks", "templates"):
        copy = shutil.copytree if (REPO / member).is_dir() else shutil.copy2
        copy(REPO / member, source / member,
             **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree
                else {}))
    with (source / "dodo.py").open("a") as f:
        f.write("# the next version\n")
    return source


def releases(host: Host) -> tuple[set[str], str]:
    """The versions on the host, and the one `current` points at."""
    root = host.tmp / "thinjail"
    return ({p.name for p in (root / "releases").iterdir()},
            (root / "current").resolve().name)


def test_a_failing_canary_stops_the_rollout_and_keeps_the_previous_version(
        host: Host, other_host: Host, third_host: Host, tmp_path: Path) -> None:
    hosts = {"alpha": host, "beta": other_host, "gamma": third_host}
    for h, jail in zip(hosts.values(), ("pg-1", "web-1", "db-1"), strict=True):
        h.jails = {jail: {"id": 111}}
    fleet = Fleet(tmp_path / "ansible", hosts)
    first = fleet.play()
    assert first.returncode == 0, first.output
    old = releases(host)[1]
    fleet.source = new_version(tmp_path / "next")

    # A config thinjail refuses: the canary's validator stops it before it replaces the
    # host's config, and the play stops before the other hosts.
    good = host.config_path.read_text()
    host.jails["pg-2"] = {"id": 111}
    refused = fleet.play()
    assert refused.returncode != 0
    assert refused.hosts() == {"alpha"}, refused.output
    render = refused.of(RENDER_TASK)["alpha"]
    assert render["status"] == "failed"
    assert "jails.pg-2.id: 111 is already used by jail pg-1" in render["msg"] + refused.output
    assert host.config_path.read_text() == good
    versions, current = releases(host)
    assert current == old and len(versions) == 2 and old in versions
    for h in (other_host, third_host):
        assert releases(h) == ({old}, old)

    # A valid config whose run fails on the canary: the previous version stays current, and
    # the rest of the fleet is not touched.
    host.jails = {"pg-1": {"id": 111}, "pg-2": {"id": 112, "release": "14.4-RELEASE"}}
    host.overrides["mirror"] = f"{host.mirror_url}/bad"
    seen = {name: call_count(h) for name, h in hosts.items()}
    failed = fleet.play()
    assert failed.returncode != 0 and failed.hosts() == {"alpha"}, failed.output
    assert failed.doit()["alpha"]["msg"].startswith("fetch:14.4-RELEASE: ")
    assert releases(host)[1] == old and len(releases(host)[0]) == 2
    for name in ("beta", "gamma"):
        assert call_count(hosts[name]) == seen[name]
        assert releases(hosts[name]) == ({old}, old)

    # Fixed: under strategy: free, every host moves to the new version and prunes the old.
    # The controller packed one archive per checksum and left no scratch files.
    del host.jails["pg-2"], host.overrides["mirror"]
    fixed = fleet.play(env={"ANSIBLE_STRATEGY": "free"})
    assert fixed.returncode == 0, fixed.output
    for h in hosts.values():
        versions, current = releases(h)
        assert versions == {current} and current != old
        assert h.running() == set(h.jails)
    packed = sorted(p.name for p in (fleet.work / "packed").iterdir())
    assert packed == sorted(f"thinjail-{v}.tar.gz" for v in (old, current))
    assert list((fleet.work / "controller-tmp").iterdir()) == []
    assert list((fleet.work / "tmp").glob("*")) == [] or all(
        not any(p.iterdir()) for p in (fleet.work / "tmp").iterdir())


@contextmanager
def lock_held(host: Host, tries: int | None = None) -> Iterator[None]:
    """Another thinjail run on the host (cron, an admin) holds its lock: for the with-block,
    or, given `tries`, until that many more doit runs have started (each logs its ZFS listing
    first) and found it held."""
    release = threading.Event()
    ready = threading.Event()
    log = host.state_dir / "commands.log"

    def hold() -> None:
        with (host.state_dir / "run.lock").open("a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.truncate(0)
            handle.write("pid 4242, started by cron")
            handle.flush()
            start = log_length(host)
            ready.set()
            deadline = time.monotonic() + 300
            while not release.is_set() and time.monotonic() < deadline:
                if tries is not None and log.exists() and log_length(host) >= start + tries:
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait()
    try:
        yield
    finally:
        release.set()
        thread.join()


def test_a_held_lock_is_waited_for_a_bounded_time(host: Host, tmp_path: Path) -> None:
    fleet = Fleet(tmp_path / "ansible", {"alpha": host},
                  group_vars={"thinjail_lock_delay": 1, "thinjail_lock_retries": 2})
    assert fleet.play().returncode == 0
    with lock_held(host):
        given_up = fleet.play()
    run = given_up.doit()["alpha"]
    assert run["status"] == "failed", given_up.output
    assert "another thinjail run on this config is in progress (pid 4242" in run["msg"]
    assert given_up.output.count("FAILED - RETRYING: [alpha]: Run thinjail") == 2
    host.jails["dev"] = {"id": 112}
    with lock_held(host, tries=2):
        waited = fleet.play()
    run = waited.doit()["alpha"]
    assert waited.returncode == 0, waited.output
    assert "FAILED - RETRYING: [alpha]: Run thinjail" in waited.output
    assert "start:dev" in run["ran"] and host.running() == {"pg-1", "dev"}


@pytest.fixture(scope="module")
def ssh() -> Iterator[SshServer]:
    with ssh_server() as server:
        yield server


def jexec_on(host: Host) -> Path:
    """The host's jexec as an SSH session finds it: the fake, with the host it stands for."""
    wrapper = host.tmp / "jexec"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in host.env().items()
                   if k == "PATH" or k.startswith("THINJAIL_FAKE_"))
    wrapper.write_text(f"#!/bin/sh\nexec env {env} {FAKES / 'jexec'} \"$@\"\n")
    wrapper.chmod(0o755)
    return wrapper


def test_an_ssh_user_with_sudo_runs_the_fleet_and_every_jail_is_reachable(
        host: Host, other_host: Host, third_host: Host, ssh: SshServer) -> None:
    """FreeBSD's sshd refuses root: the hosts are reached as an ordinary user that becomes
    root with sudo, by a controller user that cannot become anything (a controller-side
    task that tried would fail). Then the jails, added to the inventory, get a package
    through jexec on their own host."""
    hosts = {"alpha": host, "beta": other_host, "gamma": third_host}
    other_host.jails = {"web-1": {"id": 21}}
    third_host.jails = {"db-1": {"id": 31}, "db-2": {"id": 32}}
    fleet = Fleet(ssh.work / "fleet", hosts, extra={"thinjail_become": True},
                  connection=ssh.host_vars(),
                  per_host={name: {"thinjail_jexec": str(jexec_on(h))}
                            for name, h in hosts.items()})
    sudo = subprocess.run(["runuser", "-u", CONTROLLER_USER, "--", "sudo", "-n", "true"],
                          capture_output=True, text=True)
    assert sudo.returncode != 0  # the controller user has no sudo

    played = fleet.play(user=CONTROLLER_USER, extra={"thinjail_jail_packages": ["nginx", "curl"]},
                        playbook="thinjail.jails.jail_packages")
    assert played.returncode == 0, played.output
    assert {h: r["status"] for h, r in played.doit().items()} == dict.fromkeys(hosts,
                                                                                "changed")
    for h in hosts.values():
        assert h.running() == set(h.jails)
        # Root made the host's files (sudo), from a packing the controller user owns.
        assert h.config_path.stat().st_uid == 0
        assert (h.tmp / "thinjail" / "current").resolve().stat().st_uid == 0
    assert {p.owner() for p in (fleet.work / "packed").iterdir()} == {CONTROLLER_USER}
    # Each jail got the packages in its own database, through jexec on its own host.
    install = "Install the packages"
    assert {r["host"] for r in played.results if r["task"] == install} == {
        "pg-1@alpha", "web-1@beta", "db-1@gamma", "db-2@gamma"}
    for name, h in hosts.items():
        for jail in h.jails:
            clone = h.mountpoint(f"containers/{jail}")
            assert sorted(json.loads((clone / "var/db/pkg/local.json").read_text())) == [
                "curl", "nginx"]
        assert sorted(argv[1] for argv in calls(h, "jexec")
                      if argv[2:4] == ["/bin/sh", "-c"]) == sorted(h.jails), name

    # Again: nothing changes, on the hosts or in the jails.
    again = fleet.play(user=CONTROLLER_USER, extra={"thinjail_jail_packages": ["nginx", "curl"]},
                       playbook="thinjail.jails.jail_packages")
    assert again.returncode == 0, again.output
    assert {h: c for h, c in again.changed().items() if c} == {}


def test_files_go_into_a_jail_and_back_through_jexec(host: Host, ssh: SshServer,
                                                     tmp_path: Path) -> None:
    """The jexec connection's file copies, over SSH as the ordinary user with sudo: a file
    lands in the jail's own tree where its path leads (/root: the jail's clone) and comes
    back byte for byte; a path in the read-only base or a missing directory fails with sh's
    message, and nothing is written on the host."""
    assert host.doit("run", "jail:pg-1").returncode == 0
    connection = {k: v for k, v in ssh.host_vars().items() if k != "ansible_connection"}
    variables = json.dumps({**connection, "thinjail_jail": "pg-1",
                            "thinjail_jexec": str(jexec_on(host)),
                            "thinjail_jexec_prefix": ["sudo", "-n"]})

    def copy(operation: str, source: Path | str,
             dest: Path | str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "tests.support.jexec_copy",
                               str(collections_path(tmp_path)), variables, operation,
                               str(source), str(dest)], cwd=REPO, capture_output=True,
                              text=True, timeout=120)

    data = os.urandom(256 * 1024)
    (tmp_path / "out.bin").write_bytes(data)
    put = copy("put_file", tmp_path / "out.bin", "/root/payload.bin")
    assert put.returncode == 0, put.stderr
    clone, base = host.mountpoint("containers/pg-1"), host.mountpoint(f"templates/{RELEASE}-base")
    assert (clone / "root/payload.bin").read_bytes() == data
    fetched = copy("fetch_file", "/root/payload.bin", tmp_path / "back.bin")
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "back.bin").read_bytes() == data
    assert [argv[1:] for argv in calls(host, "jexec") if argv[2:4] == ["/bin/sh", "-c"]] == [
        ["pg-1", "/bin/sh", "-c", "cat > /root/payload.bin"],
        ["pg-1", "/bin/sh", "-c", "cat /root/payload.bin"]]

    into_base = copy("put_file", tmp_path / "out.bin", "/bin/payload")
    assert into_base.returncode == 1
    assert ("could not write /bin/payload in the jail: /bin/sh: cannot create /bin/payload: "
            "Read-only file system") in into_base.stderr
    assert not (base / "bin/payload").exists()
    nowhere = copy("put_file", tmp_path / "out.bin", "/root/no/payload")
    assert "cannot create /root/no/payload: No such file or directory" in nowhere.stderr
    assert "cannot create /root: Is a directory" in copy("put_file", tmp_path / "out.bin",
                                                         "/root").stderr
    assert "cat: /root: Is a directory" in copy("fetch_file", "/root", tmp_path / "dir").stderr
    missing = copy("fetch_file", "/root/missing", tmp_path / "missing")
    assert missing.returncode == 1
    assert "could not read /root/missing in the jail: cat: /root/missing: No such file or " \
        "directory" in missing.stderr
    assert not (tmp_path / "missing").exists()


def test_credentials_in_urls_are_not_logged(host: Host, tmp_path: Path) -> None:
    """A mirror or image URL with user info never shows in the play's output, --diff
    included."""
    host.overrides["mirror"] = host.mirror_url.replace("http://", "http://ops:s3cr3t-pw@")
    fleet = Fleet(tmp_path / "ansible", {"alpha": host})
    preview = fleet.play("--check", "--diff", "-v")
    assert preview.returncode == 0, preview.output
    assert "s3cr3t-pw" not in preview.output
    assert "s3cr3t-pw" not in (fleet.work / "record.jsonl").read_text()
    assert preview.of(RENDER_TASK)["alpha"]["censored"]
    assert preview.doit()["alpha"]["status"] == "changed"


def test_example_inventory_gives_each_host_a_valid_config(tmp_path: Path) -> None:
    """The README's inventory and playbook: Ansible reads them, thinjail accepts the configs."""
    listing = subprocess.run(
        [sys.executable, "-m", "ansible", "inventory", "-i", str(EXAMPLE_INVENTORY), "--list"],
        capture_output=True, text=True, check=True, env={**os.environ,
                                                         "ANSIBLE_HOME": str(tmp_path)})
    hostvars = json.loads(listing.stdout)["_meta"]["hostvars"]
    assert set(hostvars) == {"jh1.example.org", "jh2.example.org"}
    # An ordinary SSH user that becomes root with sudo: FreeBSD's sshd refuses root.
    assert {v["ansible_user"] for v in hostvars.values()} == {"admin"}
    assert {v["ansible_become_method"] for v in hostvars.values()} == {"ansible.builtin.sudo"}
    roots = set()
    for name, values in hostvars.items():
        config = parse_config(values["thinjail_config"], Path(f"{name}.yaml"))
        assert config.jails and config.release == RELEASE
        roots.add(config.zfs_root)
    assert len(roots) == 2
    syntax = subprocess.run(
        [sys.executable, "-m", "ansible", "playbook", "--syntax-check", "-i",
         str(EXAMPLE_INVENTORY), PLAYBOOK], capture_output=True, text=True,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path),
             "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path))})
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr


def test_a_host_without_a_config_stops_on_the_controller(host: Host, tmp_path: Path) -> None:
    """The role's argument spec: thinjail_config is required and a mapping, checked before
    the role's first task; an empty one fails the first task, an assert on the controller.
    Nothing runs on any host."""
    fleet = Fleet(tmp_path / "ansible", {"alpha": host})
    inventory = fleet.inventory()
    del inventory["jailhosts"]["hosts"]["alpha"]["thinjail_config"]
    (fleet.work / "inventory.yml").write_text(yaml.safe_dump(inventory))
    fleet.inventory = lambda: inventory  # type: ignore[method-assign]
    play = fleet.play()
    assert play.returncode != 0
    failed = [r for r in play.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == [
        f"{ROLE} : Validating arguments against arg spec 'main' - Put thinjail on a FreeBSD "
        "jail host and build and start its jails"]
    assert "missing required arguments: thinjail_config" in failed[0]["msg"]
    # An empty one stops there too, at the role's first task, which runs on the controller.
    inventory["jailhosts"]["hosts"]["alpha"]["thinjail_config"] = {}
    empty = fleet.play()
    assert empty.returncode != 0
    failed = [r for r in empty.results if r["status"] == "failed"]
    assert [r["task"] for r in failed] == [
        f"{ROLE} : Check that the host's config has what every config needs"]
    assert "needs at least zfs, network and jails" in failed[0]["msg"]
    assert not (host.fake_state / "calls.log").exists() or not [
        line for line in (host.fake_state / "calls.log").read_text().splitlines()
        if '"pkg"' in line]
    assert not (host.tmp / "thinjail").exists() and not host.config_path.exists()
