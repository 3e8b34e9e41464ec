"""Patch-level benchmark: the time a run takes to make a new patch level and move 1, 10 and
50 jails to it, one at a time (`doit`) and in parallel (`rollout: parallel`, `doit -n 2`), and
the ZFS space a level uses (its base and skeleton are clones: they hold only what the patch
changed).

Run from the repository root, as root, with zfs-fuse (or OpenZFS) running; FreeBSD's own
commands are the test fakes (tests/fakes), whose freebsd-update publishes the levels:
    python -m bench.levels [--sizes 1 10 50]
Writes bench/results/levels.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.stage import stage, write_results
from tests.support.host import RELEASE, Host

RESULTS = Path(__file__).resolve().parent / "results" / "levels.json"
# What each level changes: a file of the skeleton and a file of the base.
CHANGED = ("etc/rc", "usr/share/misc/termcap")


def publish(host: Host, level: str) -> None:
    """FreeBSD publishes `level`, which changes CHANGED (p0: the release's own versions)."""
    skeleton = host.mountpoint(f"templates/{RELEASE}-skeleton")
    base = host.mountpoint(f"templates/{RELEASE}-base")
    if level == "p1":
        host.publish_patch("p0", files={
            path: ((skeleton if path.startswith("etc/") else base) / path).read_text()
            for path in CHANGED})
    host.publish_patch(level, files={path: f"# {path} at {level}\n" for path in CHANGED})


def move(host: Host, level: str, *args: str) -> dict[str, Any]:
    """Publish `level`, then time the run that makes it and moves every jail."""
    publish(host, level)
    start = time.perf_counter()
    run = host.doit("run", *args)
    seconds = time.perf_counter() - start
    assert run.returncode == 0, run.output
    restarts = [c for c in run.calls if c["tool"] == "jail" and "-rc" in c["argv"]]
    assert len(restarts) == len(host.jails), run.output
    level_base = f"templates/{RELEASE}/{level}-base"
    level_skeleton = f"templates/{RELEASE}/{level}-skeleton"
    return {"seconds": round(seconds, 2), "restarts": len(restarts),
            "tasks_run": len(run.ran()),
            "base_used_bytes": int(host.get(level_base, "used")),
            "skeleton_used_bytes": int(host.get(level_skeleton, "used")),
            "first_base_used_bytes": int(host.get(f"templates/{RELEASE}-base", "used"))}


def measure(host: Host, size: int) -> dict[str, Any]:
    host.jails = {f"j{i}": {"id": i + 1} for i in range(size)}
    host.overrides["network"] = {"bridge": "igc0bridge", "uplink": "igc0",
                                 "subnet": "192.168.0.0/16", "gateway": "192.168.255.254"}
    build = host.doit("run", "-n", "2")
    assert build.returncode == 0, build.output
    one_at_a_time = move(host, "p1")
    host.overrides["rollout"] = "parallel"
    parallel = move(host, "p2", "-n", "2")
    return {"jails": size, "one_at_a_time": one_at_a_time, "parallel": parallel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    args = parser.parse_args()
    rows = []
    with stage() as bench:
        for size in args.sizes:
            rows.append(measure(bench.host(f"levels{size}"), size))
            print(rows[-1], flush=True)
    write_results(RESULTS, rows)
    print("\n| jails | move, one at a time: s (restarts) | move, parallel -n 2: s (restarts) | "
          "new base used | new skeleton used | first base used |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        one, par = r["one_at_a_time"], r["parallel"]
        print(f"| {r['jails']} | {one['seconds']} ({one['restarts']}) | {par['seconds']} "
              f"({par['restarts']}) | {one['base_used_bytes'] // 1024} KiB | "
              f"{one['skeleton_used_bytes'] // 1024} KiB | "
              f"{one['first_base_used_bytes'] // 1024} KiB |")


if __name__ == "__main__":
    main()
