"""Which way of saving doit's state costs least on a no-op at 100 jails: doit's JSON backend
(not crash-safe: it truncates and rewrites its file), the same saved atomically
(bench/atomic_json.py), or doit's SQLite backend (transactions), which thinjail uses.

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running:
    python -m bench.state_backend [--jails 100] [--repeat 7]
Writes bench/results/state_backend.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.noop import jails
from bench.stage import stage, write_results
from tasks.config import DEFAULT_UPDATE_CHECK
from tests.support.host import REPO, Host

RESULTS = Path(__file__).resolve().parent / "results" / "state_backend.json"
BACKENDS = ("json", "atomicjson", "sqlite3")


def noop_seconds(host: Host, backend: str, repeat: int) -> tuple[float, int]:
    db = host.tmp / f"state-{backend}.db"
    argv = [sys.executable, "-m", "doit", "run", "-f", str(REPO / "dodo.py"), "--backend",
            backend, "--db-file", str(db), f"config={host.config_path}"]
    env = {**host.env(), "PYTHONPATH": str(REPO)}

    def once() -> float:
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=host.tmp, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        return time.perf_counter() - start

    once(), once()  # the first fills the state, the second warms the caches
    return statistics.median(once() for _ in range(repeat)), db.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jails", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rows = []
    with stage() as bench:
        host = bench.host("host")
        host.jails = jails(args.jails)
        host.overrides["network"] = {"bridge": "igc0bridge", "uplink": "igc0",
                                     "subnet": "192.168.0.0/16", "gateway": "192.168.255.254"}
        host.overrides["update_check"] = DEFAULT_UPDATE_CHECK
        assert host.doit("run").returncode == 0
        # doit reads its plugins from doit.cfg in the working directory.
        (host.tmp / "doit.cfg").write_text(
            "[BACKEND]\natomicjson = bench.atomic_json:AtomicJsonDB\n")
        for backend in BACKENDS * 2:  # twice, interleaved: the VM's noise shows
            seconds, size = noop_seconds(host, backend, args.repeat)
            rows.append({"backend": backend, "jails": args.jails, "noop_s": round(seconds, 3),
                         "state_bytes": size})
            print(json.dumps(rows[-1]), flush=True)
    write_results(RESULTS, rows)
    print("\n| backend | jails | no-op s | state file bytes |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['jails']} | {r['noop_s']} | {r['state_bytes']} |")


if __name__ == "__main__":
    main()
