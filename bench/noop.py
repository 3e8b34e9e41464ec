"""No-op and add-one-jail benchmark: does the cost of "nothing to do" stay flat as a host
grows from 1 to 1000 jails, close to doit's own floor?

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running; FreeBSD's own
commands are the test fakes (tests/fakes), so this runs on Linux:
    python -m bench.noop [--sizes 1 10 100] [--repeat 5]
    python -m bench.noop --sizes 900   # alone: zfs-fuse mounts about 1000 filesystems at most
Writes bench/results/noop.json (keeping the rows of sizes not run) and prints a Markdown
table.

The config is a host's default (`update_check`: freebsd-update is asked at most hourly); the
no-op that asks it anyway (`update_check: 0`) is measured too. Python may cache bytecode, as
it does on a host, so neither thinjail nor the floor pays for compiling its modules.

The two questions a no-op asks the host besides `zfs get` (`jls name`, `ifconfig -a`) are
answered, in the timed runs, by shell scripts that print what the Python fakes answered for
the same host state: a real jls or ifconfig takes a few milliseconds, a Python fake tens, and
the fakes' start-up is not thinjail's cost. `zfs get` is the real one. The no-op with the
Python fakes is reported too (`noop_python_fakes_s`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.stage import stage, write_results
from tasks.config import DEFAULT_UPDATE_CHECK
from tests.support import zfspool
from tests.support.host import FAKES, REPO, Host

RESULTS = Path(__file__).resolve().parent / "results" / "noop.json"
FLOOR = Path(__file__).resolve().parent / "floor_dodo.py"
BATCH = 200


def jails(count: int) -> dict[str, dict[str, int]]:
    return {f"j{i}": {"id": i + 1} for i in range(count)}


# What a no-op asks the host, besides zfs get (tasks/host_state.py).
HOST_QUESTIONS = {"jls": ("name",), "ifconfig": ("-a",)}


def cheap_answers(host: Host) -> Path:
    """A directory of shell scripts answering HOST_QUESTIONS as the fakes do now for this
    host; any other arguments go to the fake itself."""
    directory = host.tmp / "cheap-answers"
    directory.mkdir(exist_ok=True)
    for command, args in HOST_QUESTIONS.items():
        answer = host.fake(command, *args)
        assert answer.returncode == 0, answer.stderr
        (directory / f"{command}.out").write_text(answer.stdout)
        script = directory / command
        script.write_text(f"#!/bin/sh\n[ \"$*\" = {shlex.quote(' '.join(args))} ] && "
                          f"exec cat {directory / command}.out\n"
                          f"exec {FAKES / command} \"$@\"\n")
        script.chmod(0o755)
    return directory


def timed(argv: list[str], host: Host, first: Path | None = None) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one run; `first` goes first on PATH."""
    env = {k: v for k, v in host.env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    if first:
        env["PATH"] = f"{first}{os.pathsep}{env['PATH']}"
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=host.tmp, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, argv
    return seconds, usage.ru_maxrss


def median_time(argv: list[str], host: Host, repeat: int,
                first: Path | None = None) -> tuple[float, int]:
    """Median seconds and the largest peak RSS (KiB) of `repeat` warm runs."""
    timed(argv, host, first)  # warm: bytecode written, caches filled
    runs = [timed(argv, host, first) for _ in range(repeat)]
    return statistics.median(s for s, _ in runs), max(rss for _, rss in runs)


def doit_argv(host: Host, *args: str) -> list[str]:
    return [sys.executable, "-m", "doit", *args[:1], "-f", str(REPO / "dodo.py"), *args[1:],
            f"config={host.config_path}"]


def measure(host: Host, size: int, repeat: int) -> dict[str, Any]:
    host.overrides["network"] = {"bridge": "igc0bridge", "uplink": "igc0",
                                 "subnet": "192.168.0.0/16", "gateway": "192.168.255.254"}
    host.overrides["update_check"] = DEFAULT_UPDATE_CHECK
    # Built as a host grows, BATCH jails a run (each run within the driver's time limit).
    start = time.perf_counter()
    for count in range(min(size, BATCH), size + BATCH, BATCH):
        host.jails = jails(min(count, size))
        build = host.doit("run", "-n", "2")
        assert build.returncode == 0, build.output
    build_s = time.perf_counter() - start

    noop = host.doit("run")
    assert noop.returncode == 0 and noop.ran() == set(), noop.output
    tasks = len(noop.results)
    cheap = cheap_answers(host)
    noop_s, noop_rss = median_time(doit_argv(host, "run"), host, repeat, cheap)
    python_fakes_s, _ = median_time(doit_argv(host, "run"), host, repeat)
    floor_argv = [sys.executable, "-m", "doit", "run", "-f", str(FLOOR), f"count={tasks}",
                  f"dep_file={host.tmp / 'floor.db'}"]
    floor_s, floor_rss = median_time(floor_argv, host, repeat)
    list_s, _ = median_time(doit_argv(host, "list"), host, repeat, cheap)
    # The same no-op when freebsd-update is asked on every run.
    host.overrides["update_check"] = 0
    asking = host.doit("run")
    assert asking.returncode == 0 and asking.ran() == set(), asking.output
    asking_s, _ = median_time(doit_argv(host, "run"), host, repeat, cheap)
    host.overrides["update_check"] = DEFAULT_UPDATE_CHECK

    host.jails[f"j{size}"] = {"id": size + 1}
    log = host.state_dir / "commands.log"
    before = len(log.read_text().splitlines())
    start = time.perf_counter()
    added = host.doit("run")
    add_s = time.perf_counter() - start
    assert added.returncode == 0, added.output
    add_commands = len(log.read_text().splitlines()) - before
    clone = host.dataset(f"containers/j{size}")
    return {
        "jails": size, "tasks": tasks,
        "build_s": round(build_s, 1),
        "noop_s": round(noop_s, 3), "floor_s": round(floor_s, 3),
        "noop_over_floor": round(noop_s / floor_s, 2),
        "noop_peak_rss_mib": round(noop_rss / 1024, 1),
        "floor_peak_rss_mib": round(floor_rss / 1024, 1),
        "noop_python_fakes_s": round(python_fakes_s, 3),
        "noop_subprocesses": len(noop.commands),
        # Each one's own duration, with the Python fakes (not the timed runs' answers).
        "noop_commands": {" ".join(c["argv"][:2]): c["seconds"] for c in noop.commands},
        "noop_asking_freebsd_update_s": round(asking_s, 3),
        "add_one_tasks_run": sorted(added.ran()),
        "add_one_subprocesses": add_commands,
        "add_one_s": round(add_s, 3),
        "clone_used_bytes": int(zfspool.zfs_get(clone, "used")),
        "list_s": round(list_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with stage() as bench:
        for size in args.sizes:
            rows.append(measure(bench.host(f"n{size}"), size, args.repeat))
            print(json.dumps(rows[-1]), flush=True)
    write(rows)


def write(rows: list[dict[str, Any]]) -> None:
    """Rows of other sizes already in the results are kept: a large size runs on its own
    (zfs-fuse mounts about a thousand filesystems at most, counting every host's)."""
    try:
        kept = json.loads(RESULTS.read_text())["rows"]
    except (OSError, ValueError, KeyError):
        kept = []
    sizes = {r["jails"] for r in rows}
    rows = sorted([*(r for r in kept if r["jails"] not in sizes), *rows],
                  key=lambda r: r["jails"])
    write_results(RESULTS, rows)
    print("\n| jails | tasks | no-op s | doit floor s | ratio | peak RSS MiB (floor) | "
          "no-op subprocesses | no-op asking freebsd-update s | add one: tasks run / "
          "subprocesses / s | clone used | `doit list` s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['jails']} | {r['tasks']} | {r['noop_s']} | {r['floor_s']} | "
              f"{r['noop_over_floor']} | {r['noop_peak_rss_mib']} ({r['floor_peak_rss_mib']}) | "
              f"{r['noop_subprocesses']} | "
              f"{r['noop_asking_freebsd_update_s']} | "
              f"{len(r['add_one_tasks_run'])} / {r['add_one_subprocesses']} / {r['add_one_s']} | "
              f"{r['clone_used_bytes'] // 1024} KiB | {r['list_s']} |")


if __name__ == "__main__":
    main()
