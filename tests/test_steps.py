"""Steps and mechanisms called directly, without doit."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from tasks.context import TEMPLATES_DIR
from tasks.errors import CommandError, ThinjailError
from tasks.runner import Runner
from tasks.steps.certs import repaired_target
from tasks.steps.fetch import manifest_sha256
from tasks.steps.rcconf import read_rc_vars, register_for_boot, with_jail
from tasks.steps.render import render, write_managed
from tasks.steps.update import patch_level
from tests.support.host import FAKES


@pytest.mark.parametrize(("link", "target", "expected"), [
    # certctl's relative links reach usr/share in the base: one more ../ from /skeleton/etc
    ("etc/ssl/certs/4042bcee.0", "../../../usr/share/certs/trusted/ISRG_Root_X1.pem",
     "../../../../usr/share/certs/trusted/ISRG_Root_X1.pem"),
    ("etc/rc.conf.sample", "rc", None),  # same directory: still right
    ("etc/termcap", "/usr/share/misc/termcap", None),  # absolute: the jail resolves it
    ("etc/x", "../var/run/x", None),  # into another moved directory: still right
    ("usr/local/etc/ssl/cert.pem", "../../../share/certs/ca-root-nss.crt",
     "../../../../../usr/share/certs/ca-root-nss.crt"),
    # an already repaired link stays as it is (the repair is idempotent)
    ("etc/ssl/certs/4042bcee.0", "../../../../usr/share/certs/trusted/ISRG_Root_X1.pem", None),
])
def test_repaired_target(link: str, target: str, expected: str | None) -> None:
    assert repaired_target(link, target) == expected


def test_runner_logs_every_command_with_its_duration(tmp_path: Path) -> None:
    log = tmp_path / "commands.log"
    runner = Runner(log_path=log)
    assert runner.run(["echo", "hi"], step="demo").stdout == "hi\n"
    assert runner.pipeline([["printf", "a\\nb\\n"], ["wc", "-l"]], step="demo").stdout.strip() \
        == "2"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["argv"] for e in entries] == [["echo", "hi"],
                                            ["printf", "a\\nb\\n", "|", "wc", "-l"]]
    assert all(e["rc"] == 0 and e["seconds"] >= 0 and e["step"] == "demo" for e in entries)


def test_runner_dry_run_refuses_changes_and_runs_reads(tmp_path: Path) -> None:
    runner = Runner(log_path=tmp_path / "log", dry_run=True)
    target = tmp_path / "made"
    with pytest.raises(CommandError, match=f"demo: a dry-run does not run `touch {target}`"):
        runner.run(["touch", str(target)], step="demo")
    assert not target.exists()
    assert runner.run(["echo", "read"], step="demo", changes=False).stdout == "read\n"


def test_runner_names_missing_freebsd_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CommandError, match=r"start: needs `jail`, a FreeBSD command"):
        Runner().run(["jail", "-c", "x"], step="start")
    with pytest.raises(CommandError, match=r"extract: needs `bsdtar`, which is not installed"):
        Runner().run(["bsdtar", "-x"], step="extract")


def test_runner_failure_names_step_command_and_exit_code() -> None:
    with pytest.raises(CommandError) as info:
        Runner().run(["sh", "-c", "echo boom >&2; exit 3"], step="skeleton")
    assert str(info.value) == "skeleton: `sh -c 'echo boom >&2; exit 3'` failed with exit " \
                              "code 3: boom"
    with pytest.raises(CommandError, match="exit code 4: first stage broke"):
        Runner().pipeline([["sh", "-c", "echo first stage broke >&2; exit 4"], ["cat"]],
                          step="skeleton")


def test_read_rc_vars(tmp_path: Path) -> None:
    rc_conf = tmp_path / "rc.conf"
    rc_conf.write_text('hostname="h"\njail_list="a b"  # boot order\n#jail_list="x"\n'
                       "jail_enable=YES\njail_list='a b c'\n")
    assert read_rc_vars(rc_conf) == {"hostname": "h", "jail_list": "a b c",
                                     "jail_enable": "YES"}
    # Plain "..." values are taken as they are, the rest as sh would read them.
    rc_conf.write_text('a="x  y "\nb="x"#c\nc="p$q"\nd="x\\"y"\ne=""\nf="a""b"\ng="a" b\n'
                       'h="/j/pg-1.conf"  \n')
    assert read_rc_vars(rc_conf) == {"a": "x  y ", "b": "x", "c": "p$q", "d": 'x"y', "e": "",
                                     "f": "ab", "g": "a b", "h": "/j/pg-1.conf"}


@pytest.mark.parametrize(("current", "name", "expected"), [
    (["pg-1"], "web", ["pg-1", "web"]),
    (["pg-1", "web"], "dev", ["pg-1", "dev", "web"]),  # dev comes before web in the config
    (["mine", "web"], "pg-1", ["mine", "pg-1", "web"]),  # an unmanaged jail keeps its place
    (["web", "pg-1"], "dev", ["dev", "web", "pg-1"]),  # web and pg-1 keep their order
    ([], "other", ["other"]),
])
def test_with_jail(current: list[str], name: str, expected: list[str]) -> None:
    assert with_jail(current, name, ("pg-1", "dev", "web")) == expected


def test_patch_level(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    script = tmp_path / "bin/freebsd-version"
    script.write_text('#!/bin/sh\nUSERLAND_VERSION="14.3-RELEASE-p4"\n')
    assert patch_level(tmp_path) == "p4"
    script.write_text('#!/bin/sh\nUSERLAND_VERSION="14.3-RELEASE"\n')
    assert patch_level(tmp_path) == "p0"


def test_manifest_sha256() -> None:
    sha = "ab" * 32
    manifest = f'base-dbg.txz\t{"0" * 64}\t1\tbase_dbg\t"Debug"\toff\n' \
               f'base.txz\t{sha}\t3\tbase\t"Base system (MANDATORY)"\ton\n'
    assert manifest_sha256(manifest) == sha
    with pytest.raises(ThinjailError, match=r"does not list base\.txz"):
        manifest_sha256("kernel.txz\tx\n")


def test_write_managed_never_replaces_a_foreign_file(tmp_path: Path) -> None:
    mine = tmp_path / "jail.conf"
    mine.write_text("# my own jails\nweb { path = /j/web; }\n")
    with pytest.raises(ThinjailError, match="was not written by thinjail: move it away"):
        write_managed(mine, "# Managed by thinjail\n", "jail.conf.j2")
    assert mine.read_text().startswith("# my own jails")


def _add(rc_conf: Path, lock: Path, name: str, order: tuple[str, ...]) -> None:
    register_for_boot(Runner(), rc_conf, lock, name, rc_conf.with_name(f"{name}.conf"), order)


def test_parallel_jail_list_edits_keep_every_jail(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """`doit -n` runs rc tasks in parallel processes; sysrc does not lock rc.conf, we do."""
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("THINJAIL_FAKE_STATE", str(tmp_path / "fake"))
    rc_conf, lock = tmp_path / "rc.conf", tmp_path / "rc.conf.lock"
    order = tuple(f"j{i}" for i in range(8))
    workers = [multiprocessing.Process(target=_add, args=(rc_conf, lock, name, order))
               for name in order]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    values = read_rc_vars(rc_conf)
    assert values["jail_list"].split() == list(order)
    assert all(values[f"jail_{name}_conf"] == str(tmp_path / f"{name}.conf") for name in order)


@pytest.mark.parametrize("value", ['pg"1', "pg$1", "a b", "x\ny", "#c", "\\e", "${name}"])
def test_every_rendered_value_is_checked(value: str) -> None:
    """Whatever reaches a template unvalidated stops the render, not only paths."""
    values = {"jail": {"name": "pg-1", "id": 111, "ip": "192.168.7.111/24", "epair": "epair111",
                       "allow_mount": False, "devfs_ruleset": 5, "mac_a": None, "mac_b": None},
              "network": {"gateway": "192.168.7.101", "bridge": "igc0bridge"},
              "jail_root": "/zdata/jails/pg-1", "fstab": "/zdata/jails/pg-1.fstab",
              "vnet_ruleset": 5}
    assert "devfs_ruleset = 5;\t\t# devfsrules_jail_vnet" in render(TEMPLATES_DIR, "jail.j2",
                                                                     **values)
    values["network"]["bridge"] = value
    with pytest.raises(ThinjailError, match=r"cannot go into jail\.conf or fstab unquoted"):
        render(TEMPLATES_DIR, "jail.j2", **values)


def _log_once(runner: Runner) -> None:
    runner.run(["true"], step="worker", changes=False)


def test_workers_forked_while_a_thread_logs_never_hang(tmp_path: Path) -> None:
    """`doit -n` forks its workers while the background `jls` may be logging; whatever the
    logging holds must not be copied into a worker held."""
    runner = Runner(log_path=tmp_path / "commands.log")
    done = threading.Event()

    def background() -> None:
        while not done.is_set():
            runner._log("jls", [["jls", "name"]], False, [0], 0.0, 0.0)

    thread = threading.Thread(target=background)
    thread.start()
    try:
        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=_log_once, args=(runner,)) for _ in range(40)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 20
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        hung = [w for w in workers if w.exitcode is None]
        for worker in hung:
            worker.kill()
    finally:
        done.set()
        thread.join()
    assert not hung, f"{len(hung)} of 40 forked workers hung"
    lines = (tmp_path / "commands.log").read_text().splitlines()
    assert sum(json.loads(line)["step"] == "worker" for line in lines) == 40
