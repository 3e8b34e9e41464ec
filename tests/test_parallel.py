"""`doit -n 4` with 8 new jails, what a user with many jails types: every jail is built and
started, commands that change ZFS ran one at a time (zfs-fuse hangs on concurrent clones and
mounts; ZFS serialises them anyway), and a second parallel run does nothing."""

from __future__ import annotations

import itertools

from tests.support import zfspool
from tests.support.host import RELEASE, Host

JAILS = {f"j{i}": {"id": 10 + i} for i in range(8)}


def test_eight_new_jails_with_four_workers(host: Host) -> None:
    host.jails = dict(JAILS)
    run = host.doit("run", "-n", "4")
    assert run.returncode == 0, run.output
    assert host.running() == set(JAILS)
    snapshot = next(n for n in host.names() if "@base-" in n)
    assert snapshot.startswith(host.dataset(f"templates/{RELEASE}-skeleton@"))
    for name in JAILS:
        assert zfspool.zfs_get(host.dataset(f"containers/{name}"), "origin") == snapshot
        assert (host.etc / f"jail.conf.d/{name}.conf").is_file()
    rc_conf = (host.etc / "rc.conf").read_text()
    assert f'jail_list="{" ".join(JAILS)}"' in rc_conf

    changes = sorted((c["time"] - c["seconds"], c["time"], c["argv"]) for c in run.commands
                     if c["argv"][0] == "zfs" and c["changes"])
    assert len(changes) >= 8 + 4
    # The log has each command's end (to the ms, taken while the lock is held) and its
    # duration: 2 ms of slack for the rounding; commands that ran at once overlap by far more.
    for (_, end, first), (begin, _, second) in itertools.pairwise(changes):
        assert begin >= end - 0.002, f"{first} and {second} overlapped"

    again = host.doit("run", "-n", "4")
    assert again.returncode == 0 and again.ran() == set() and again.changing_commands() == []
