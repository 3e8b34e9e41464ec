"""The bridge for the jails' epairs, created when missing and persisted in rc.conf (the
host's interfaces, one `ifconfig -a` per run, are read in tasks/host_state.py).

A bridge named like a cloner unit (`bridge0`) is listed in cloned_interfaces as is; any
other name (`igc0bridge`) is a bridgeN unit renamed at boot with ifconfig_bridgeN_name,
which is how rc.conf(5) names cloned interfaces. The bridge is current only while the
uplink is one of its members: FreeBSD 15 refuses a member that carries an IP address
(net.link.bridge.member_ifaddrs=0), and a bridge without its uplink leaves every jail
offline. Such an uplink is refused before anything is created, with the rc.conf lines that
move the host's address to the bridge; thinjail never moves it itself, since that would cut
the admin's SSH session.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

from tasks.errors import ThinjailError
from tasks.host_state import HostInterfaces, Interface
from tasks.locks import file_lock
from tasks.runner import Runner
from tasks.steps.rcconf import read_rc_vars

STEP = "bridge"
CLONER_UNIT_RE = re.compile(r"^bridge[0-9]+$")
FIRST_MEMBER_IFADDRS_REFUSAL = 15  # FreeBSD version from which bridges refuse addressed members


def bridge_line(current: str | None, uplink: str | None) -> str:
    """The ifconfig_<bridge> value rc.conf needs: what is there (the host's address, say)
    kept, the uplink added as a member, the bridge brought up."""
    words = (current or "").split()
    if uplink and not any(words[i:i + 2] == ["addm", uplink] for i in range(len(words))):
        words += ["addm", uplink]
    if "up" not in words and not any(w.upper().endswith("DHCP") for w in words):
        words.append("up")
    return " ".join(words)


def _bridge_unit(values: dict[str, str], bridge: str) -> str | None:
    """The cloner unit rc.conf creates the bridge as: itself, a unit renamed to it, or None."""
    cloned = values.get("cloned_interfaces", "").split()
    if bridge in cloned:
        return bridge
    return next((u for u in cloned if values.get(f"ifconfig_{u}_name") == bridge), None)


def _new_unit(values: dict[str, str], bridge: str, existing: Iterable[str]) -> str:
    """The cloner unit rc.conf is to create the bridge as: itself when it is named like
    one, else the first bridgeN neither rc.conf nor the host uses."""
    if CLONER_UNIT_RE.fullmatch(bridge):
        return bridge
    taken = {*values.get("cloned_interfaces", "").split(), *existing}
    return next(f"bridge{i}" for i in range(1 << 15) if f"bridge{i}" not in taken)


def bridge_persisted(rc_conf: Path, bridge: str, uplink: str | None) -> bool:
    """rc.conf creates the bridge at boot and adds the uplink to it."""
    values = read_rc_vars(rc_conf)
    current = values.get(f"ifconfig_{bridge}")
    return (_bridge_unit(values, bridge) is not None
            and current == bridge_line(current, uplink))


def bridge_has_uplink(interfaces: dict[str, Interface], bridge: str,
                      uplink: str | None) -> bool:
    found = interfaces.get(bridge)
    return found is not None and (uplink is None or uplink in found.members)


def host_freebsd_major(runner: Runner) -> int:
    """Major version of the running kernel (`freebsd-version -r`, e.g. 15.1-RELEASE-p2)."""
    version = runner.run(["freebsd-version", "-r"], step=STEP, changes=False).stdout.strip()
    match = re.match(r"([0-9]+)\.", version)
    if match is None:
        raise ThinjailError(f"{STEP}: cannot read the host's FreeBSD version from "
                            f"`freebsd-version -r`: {version!r}")
    return int(match.group(1))


def move_address_advice(rc_conf: Path, interfaces: dict[str, Interface], bridge: str,
                        uplink: str) -> str:
    """The rc.conf lines that put the uplink's addresses on the bridge instead."""
    values = read_rc_vars(rc_conf)
    addresses = interfaces[uplink].addresses
    v4 = [a for a in addresses if ipaddress.ip_interface(a).version == 4]
    v6 = [a for a in addresses if ipaddress.ip_interface(a).version == 6]
    lines = [f'ifconfig_{uplink}="up"']
    if _bridge_unit(values, bridge) is None:
        unit = _new_unit(values, bridge, interfaces)
        cloned = values.get("cloned_interfaces", "").split()
        lines.append(f'cloned_interfaces="{" ".join([*cloned, unit])}"')
        if unit != bridge:
            lines.append(f'ifconfig_{unit}_name="{bridge}"')
    if "DHCP" in values.get(f"ifconfig_{uplink}", "").upper():
        lines.append(f'ifconfig_{bridge}="addm {uplink} SYNCDHCP"')
    else:
        first = f"inet {v4[0]} " if v4 else ""
        lines.append(f'ifconfig_{bridge}="{first}addm {uplink} up"')
        lines += [f'ifconfig_{bridge}_alias{i}="inet {a}"' for i, a in enumerate(v4[1:])]
    if v6:
        address = ipaddress.ip_interface(v6[0])
        lines.append(f'ifconfig_{bridge}_ipv6="inet6 {address.ip} prefixlen '
                     f'{address.network.prefixlen}"')
    return "\n".join(f"    {line}" for line in lines)


def refuse_addressed_uplink(runner: Runner, rc_conf: Path, interfaces: dict[str, Interface],
                            bridge: str, uplink: str) -> None:
    """Stop before anything is created when the uplink cannot join the bridge: it does not
    exist, or it carries an address on a FreeBSD that refuses that."""
    if uplink not in interfaces:
        raise ThinjailError(f"{STEP}: network.uplink {uplink} is no interface of this host "
                            f"(`ifconfig -a` lists {', '.join(sorted(interfaces))}): name the "
                            "NIC the jails' bridge should use")
    addresses = interfaces[uplink].addresses
    if bridge_has_uplink(interfaces, bridge, uplink) or not addresses:
        return
    advice = move_address_advice(rc_conf, interfaces, bridge, uplink)
    major = host_freebsd_major(runner)
    if major < FIRST_MEMBER_IFADDRS_REFUSAL:
        print(f"{STEP}: note: {uplink} carries {', '.join(addresses)}; FreeBSD 15 refuses "
              f"that for a bridge member, so before upgrading this host, move the address to "
              f"{bridge} in rc.conf:\n{advice}")
        return
    raise ThinjailError(
        f"{STEP}: network.uplink {uplink} carries {', '.join(addresses)}, and FreeBSD "
        f"{major} refuses a bridge member with an address "
        "(net.link.bridge.member_ifaddrs=0); nothing was created. The host's address "
        f"belongs on the bridge: in {rc_conf}, replace the lines for {uplink} with\n{advice}\n"
        "  then apply them from the console (or reboot) and rerun. thinjail does not move "
        "the address itself: that would cut an SSH session over it.")


def ensure_bridge(runner: Runner, interfaces: HostInterfaces, rc_conf: Path, lock: Path,
                  bridge: str, uplink: str | None) -> None:
    if uplink:
        refuse_addressed_uplink(runner, rc_conf, interfaces.answer(), bridge, uplink)
    if bridge not in interfaces.answer():
        # One ifconfig invocation creates and names it (ifconfig(8): the new name is not
        # printed when it is renamed in the same invocation), so an interruption cannot
        # leave an unnamed bridgeN behind.
        create = [bridge, "create"] if CLONER_UNIT_RE.fullmatch(bridge) else [
            "bridge", "create", "name", bridge]
        runner.run(["ifconfig", *create, "up"], step=STEP)
        interfaces.invalidate()
    if uplink and not bridge_has_uplink(interfaces.answer(), bridge, uplink):
        try:
            runner.run(["ifconfig", bridge, "addm", uplink, "up"], step=STEP)
        finally:
            interfaces.invalidate()
    with file_lock(lock):
        if bridge_persisted(rc_conf, bridge, uplink):
            return
        values = read_rc_vars(rc_conf)
        current = values.get(f"ifconfig_{bridge}")
        settings = [f"ifconfig_{bridge}={bridge_line(current, uplink)}"]
        if _bridge_unit(values, bridge) is None:
            unit = _new_unit(values, bridge, interfaces.names())
            settings.append(f"cloned_interfaces+={unit}")
            if unit != bridge:
                settings.append(f"ifconfig_{unit}_name={bridge}")
        runner.run(["sysrc", "-f", str(rc_conf), *settings], step=STEP)

