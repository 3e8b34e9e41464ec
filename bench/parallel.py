"""Parallel build benchmark: 8 new jails with `doit -n 1, 2, 4` (commands that change ZFS
pass through one host-wide lock, everything else runs in parallel).

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running; FreeBSD's own
commands are the test fakes (tests/fakes):
    python -m bench.parallel [--jails 8] [--workers 1 2 4] [--repeat 3]
Writes bench/results/parallel.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bench.stage import Stage, stage, write_results
from tests.support.host import REPO

RESULTS = Path(__file__).resolve().parent / "results" / "parallel.json"


def build_seconds(bench: Stage, jails: int, workers: int) -> float:
    """A fresh host with its templates built; the time `doit -n workers` takes to build and
    start the jails."""
    host = bench.host(f"n{workers}-{uuid.uuid4().hex[:6]}")
    host.jails = {}
    assert host.doit("run", "snapshot").returncode == 0
    host.jails = {f"j{i}": {"id": 10 + i} for i in range(jails)}
    host.write_config()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "doit", "run", "-n", str(workers), "-f",
                    str(REPO / "dodo.py"), f"config={host.config_path}"], env=host.env(),
                   cwd=host.tmp, check=True, stdout=subprocess.DEVNULL, timeout=600)
    seconds = time.perf_counter() - start
    assert host.running() == set(host.jails)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jails", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with stage() as bench:
        for workers in args.workers:
            times = [build_seconds(bench, args.jails, workers) for _ in range(args.repeat)]
            rows.append({"jails": args.jails, "workers": workers, "cores": os.cpu_count(),
                         "build_s": round(statistics.median(times), 2)})
            print(json.dumps(rows[-1]), flush=True)
    serial = next(r["build_s"] for r in rows if r["workers"] == 1)
    for row in rows:
        row["speedup"] = round(serial / row["build_s"], 2)
    write_results(RESULTS, rows)
    print("\n| jails | doit -n | build and start s | speed-up |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['jails']} | {r['workers']} | {r['build_s']} | {r['speedup']}x |")


if __name__ == "__main__":
    main()
