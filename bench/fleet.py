"""Fleet benchmark: how long does a no-op `thinjail.jails.site` take over 20 jail hosts, with
5 and with 20 forks, pipelining on?

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running:
    python -m bench.fleet [--hosts 20] [--repeat 3]
Writes bench/results/fleet.json and prints a Markdown table.

The hosts are stand-in jail hosts on this machine (tests/support/fleet.py: local connection,
each with its own config, parent dataset and fake FreeBSD commands), each with one jail,
imported from an image the first host builds. Each figure is the median wall time of
`repeat` no-op plays, after one warm play; "per host" divides it by the number of hosts. The
settings are the collection's ansible.cfg (forks, pipelining); the batches are all hosts at
once (`thinjail_serial: 100%`) and, for the last row, the playbook's default, a canary and
then quarters.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.stage import Stage, stage, write_results
from tests.support.collection import COLLECTION
from tests.support.fleet import Fleet, Play
from tests.support.host import Host

RESULTS = Path(__file__).resolve().parent / "results" / "fleet.json"
ALL_AT_ONCE: dict[str, Any] = {"thinjail_serial": "100%"}


def hosts(bench: Stage, count: int) -> dict[str, Host]:
    """count hosts with one jail each, the first building the templates and exporting them
    for the rest to import."""
    first = bench.host("h0")
    image = bench.work / "image"
    built = first.doit("run", "image", f"image_dir={image}")
    assert built.returncode == 0, built.output
    found = {"h0": first}
    for i in range(1, count):
        host = bench.host(f"h{i}")
        host.templates_from = image
        found[f"h{i}"] = host
    return found


def timed_play(fleet: Fleet, forks: int, extra: dict[str, Any]) -> tuple[float, Play]:
    env = {"ANSIBLE_CONFIG": str(COLLECTION / "ansible.cfg"), "ANSIBLE_FORKS": str(forks)}
    start = time.perf_counter()
    play = fleet.play(env=env, extra=extra)
    seconds = time.perf_counter() - start
    assert play.returncode == 0, play.output
    return seconds, play


def measure(fleet: Fleet, forks: int, extra: dict[str, Any], repeat: int) -> dict[str, Any]:
    timed_play(fleet, forks, extra)  # warm
    runs = []
    for _ in range(repeat):
        seconds, play = timed_play(fleet, forks, extra)
        assert not any(play.changed().values()), play.changed()
        runs.append(seconds)
    wall = statistics.median(runs)
    return {"hosts": len(fleet.hosts), "forks": forks,
            "batches": extra.get("thinjail_serial", "[1, '25%'] (default)"),
            "noop_wall_s": round(wall, 1), "per_host_s": round(wall / len(fleet.hosts), 2),
            "runs_s": [round(s, 1) for s in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with stage() as bench:
        fleet = Fleet(bench.work / "ansible", hosts(bench, args.hosts))
        first = timed_play(fleet, 20, ALL_AT_ONCE)[0]
        assert all(h.running() == {"pg-1"} for h in fleet.hosts.values())
        print(f"first run (build every host): {first:.1f} s", flush=True)
        rows = [measure(fleet, forks, ALL_AT_ONCE, args.repeat) for forks in (5, 20)]
        rows.append(measure(fleet, 20, {}, args.repeat))
        for row in rows:
            print(json.dumps(row), flush=True)
    write_results(RESULTS, [{"first_run_s": round(first, 1), "hosts": args.hosts}, *rows])
    print("\n| hosts | forks | batches | no-op play s | per host s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['hosts']} | {r['forks']} | {r['batches']} | {r['noop_wall_s']} | "
              f"{r['per_host_s']} |")


if __name__ == "__main__":
    main()
