"""No-op and add-one-jail benchmark: does the cost of "nothing to do" stay flat as a host
grows from 1 to 100 jails, close to doit's own floor?

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running; FreeBSD's own
commands are the test fakes (tests/fakes), so this runs on Linux:
    python -m bench.noop [--sizes 1 10 100] [--repeat 5]
Writes bench/results/noop.json and prints a Markdown table.

The config is a host's default (`update_check`: freebsd-update is asked at most hourly); the
no-op that asks it anyway (`update_check: 0`) is measured too. Python may cache bytecode, as
it does on a host, so neither thinjail nor the floor pays for compiling its modules.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.stage import stage, write_results
from tasks.config import DEFAULT_UPDATE_CHECK
from tests.support import zfspool
from tests.support.host import REPO, Host

RESULTS = Path(__file__).resolve().parent / "results" / "noop.json"
FLOOR = Path(__file__).resolve().parent / "floor_dodo.py"


def jails(count: int) -> dict[str, dict[str, int]]:
    return {f"j{i}": {"id": i + 1} for i in range(count)}


def timed(argv: list[str], host: Host) -> float:
    env = {k: v for k, v in host.env().items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=host.tmp, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def median_time(argv: list[str], host: Host, repeat: int) -> float:
    timed(argv, host)  # warm: bytecode written, caches filled
    return statistics.median(timed(argv, host) for _ in range(repeat))


def doit_argv(host: Host, *args: str) -> list[str]:
    return [sys.executable, "-m", "doit", *args[:1], "-f", str(REPO / "dodo.py"), *args[1:],
            f"config={host.config_path}"]


def measure(host: Host, size: int, repeat: int) -> dict[str, Any]:
    host.jails = jails(size)
    host.overrides["network"] = {"bridge": "igc0bridge", "uplink": "igc0",
                                 "subnet": "192.168.0.0/16", "gateway": "192.168.255.254"}
    host.overrides["update_check"] = DEFAULT_UPDATE_CHECK
    build = host.doit("run")
    assert build.returncode == 0, build.output

    noop = host.doit("run")
    assert noop.returncode == 0 and noop.ran() == set(), noop.output
    tasks = len(noop.results)
    noop_s = median_time(doit_argv(host, "run"), host, repeat)
    floor_argv = [sys.executable, "-m", "doit", "run", "-f", str(FLOOR), f"count={tasks}",
                  f"dep_file={host.tmp / 'floor.db'}"]
    floor_s = median_time(floor_argv, host, repeat)
    list_s = median_time(doit_argv(host, "list"), host, repeat)
    # The same no-op when freebsd-update is asked on every run.
    host.overrides["update_check"] = 0
    asking = host.doit("run")
    assert asking.returncode == 0 and asking.ran() == set(), asking.output
    asking_s = median_time(doit_argv(host, "run"), host, repeat)
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
        "noop_s": round(noop_s, 3), "floor_s": round(floor_s, 3),
        "noop_over_floor": round(noop_s / floor_s, 2),
        "noop_subprocesses": len(noop.commands),
        # Started together; each one's own duration (the Python fakes take tens of ms).
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
    write_results(RESULTS, rows)
    print("\n| jails | tasks | no-op s | doit floor s | ratio | no-op subprocesses | "
          "no-op asking freebsd-update s | add one: tasks run / subprocesses / s | "
          "clone used | `doit list` s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['jails']} | {r['tasks']} | {r['noop_s']} | {r['floor_s']} | "
              f"{r['noop_over_floor']} | {r['noop_subprocesses']} | "
              f"{r['noop_asking_freebsd_update_s']} | "
              f"{len(r['add_one_tasks_run'])} / {r['add_one_subprocesses']} / {r['add_one_s']} | "
              f"{r['clone_used_bytes'] // 1024} KiB | {r['list_s']} |")


if __name__ == "__main__":
    main()
