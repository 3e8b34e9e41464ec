"""The host's bridge for the jails' epairs: created when missing and persisted in rc.conf.

A bridge named like a cloner unit (`bridge0`) is listed in cloned_interfaces as is; any
other name (`igc0bridge`) is a bridgeN unit renamed at boot with ifconfig_bridgeN_name,
which is how rc.conf(5) names cloned interfaces.
"""

from __future__ import annotations

import re
from pathlib import Path

from tasks.locks import file_lock
from tasks.runner import CachedAnswer, Runner
from tasks.steps.rcconf import read_rc_vars

STEP = "bridge"
CLONER_UNIT_RE = re.compile(r"^bridge[0-9]+$")


class HostInterfaces(CachedAnswer):
    """The host's network interfaces."""

    def __init__(self, runner: Runner) -> None:
        super().__init__(runner, ("ifconfig", "-l"), "ifconfig")


def bridge_settings(bridge: str, uplink: str | None) -> str:
    return f"addm {uplink} up" if uplink else "up"


def bridge_persisted(rc_conf: Path, bridge: str, uplink: str | None) -> bool:
    """rc.conf creates the bridge at boot and adds the uplink to it."""
    values = read_rc_vars(rc_conf)
    cloned = values.get("cloned_interfaces", "").split()
    created = bridge in cloned or any(values.get(f"ifconfig_{unit}_name") == bridge
                                      for unit in cloned)
    return created and values.get(f"ifconfig_{bridge}") == bridge_settings(bridge, uplink)


def ensure_bridge(runner: Runner, interfaces: HostInterfaces, rc_conf: Path, lock: Path,
                  bridge: str, uplink: str | None) -> None:
    if bridge not in interfaces.names():
        # One ifconfig invocation creates, names and configures it (ifconfig(8): the new name
        # is not printed when it is renamed in the same invocation), so an interruption
        # cannot leave an unnamed bridgeN behind.
        create = [bridge, "create"] if CLONER_UNIT_RE.fullmatch(bridge) else [
            "bridge", "create", "name", bridge]
        runner.run(["ifconfig", *create, *bridge_settings(bridge, uplink).split()], step=STEP)
        interfaces.invalidate()
    with file_lock(lock):
        if bridge_persisted(rc_conf, bridge, uplink):
            return
        values = read_rc_vars(rc_conf)
        cloned = values.get("cloned_interfaces", "").split()
        settings = [f"ifconfig_{bridge}={bridge_settings(bridge, uplink)}"]
        if CLONER_UNIT_RE.fullmatch(bridge):
            settings.append(f"cloned_interfaces+={bridge}")
        elif not any(values.get(f"ifconfig_{u}_name") == bridge for u in cloned):
            taken = set(cloned) | interfaces.names()
            unit = next(f"bridge{i}" for i in range(1 << 15) if f"bridge{i}" not in taken)
            settings += [f"cloned_interfaces+={unit}", f"ifconfig_{unit}_name={bridge}"]
        runner.run(["sysrc", "-f", str(rc_conf), *settings], step=STEP)
