"""provision: first-boot packages and services of a jail, from the host.

Packages are installed with `pkg -j <jail> install -y`; each service is enabled in the
jail's rc.conf with `sysrc -j` and started unless it runs. The jail's dataset carries the
digest of the lists it was provisioned with (`thinjail:provision`), so this reruns only when
the lists change, or when the dataset is new.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.inputs import StepInputs
from tasks.runner import Runner
from tasks.zfs import Zfs

STEP = "provision"


@dataclass(frozen=True)
class ProvisionInputs(StepInputs):
    """A jail's packages and services (a stamp older than step versions: it has none)."""

    STEP = STEP
    STAMPED = ("packages", "services")
    container: str
    name: str
    packages: tuple[str, ...]
    services: tuple[str, ...]


def provision_jail(runner: Runner, zfs: Zfs, want: ProvisionInputs) -> None:
    name, packages, services = want.name, want.packages, want.services
    if packages:
        runner.run(["pkg", "-j", name, "install", "-y", *packages], step=STEP)
    for service in services:
        runner.run(["sysrc", "-j", name, f"{service}_enable=YES"], step=STEP)
        status = runner.run(["service", "-j", name, service, "status"], step=STEP,
                            changes=False, ok_codes=(0, 1))
        if status.returncode != 0:
            runner.run(["service", "-j", name, service, "start"], step=STEP)
    zfs.set_stamp(want.container, STEP, want.stamp, STEP)
