"""Bad config is rejected with one line naming the key and the fix. Validation is pure, so
the cases run in-process, without a pool or doit; one case runs doit to prove that nothing
runs before the config is accepted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.config import load_config
from tasks.errors import ConfigError
from tasks.plan import ReleasePlan
from tests.support.host import Host

# (what to change in a good config, the key the message must name, words of the fix)
BAD_CONFIGS: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown top key": ({"colour": "blue"}, "colour: unknown key", "remove it"),
    "missing release": ({"release": None}, "release: missing", "15.1-RELEASE"),
    "missing jails": ({"jails": None}, "jails: missing", "example"),
    "unknown jail key": ({"jails": {"pg-1": {"id": 111, "colour": 1}}},
                         "jails.pg-1.colour: unknown key", "remove it"),
    "missing id": ({"jails": {"pg-1": {}}}, "jails.pg-1.id: missing", "{id: 111}"),
    "duplicate id": ({"jails": {"pg-1": {"id": 111}, "dev": {"id": 111, "ip": "192.168.7.9"}}},
                     "jails.dev.id: 111 is already used by jail pg-1", "own id"),
    "duplicate ip": ({"jails": {"pg-1": {"id": 111}, "dev": {"id": 9, "ip": "192.168.7.111"}}},
                     "jails.dev.ip: 192.168.7.111 is already used by jail pg-1", "own address"),
    "ip outside subnet": ({"jails": {"pg-1": {"id": 111, "ip": "10.0.0.5/24"}}},
                          "jails.pg-1.ip: 10.0.0.5/24 is outside 192.168.7.0/24",
                          "host address of network.subnet"),
    "id outside subnet": ({"jails": {"pg-1": {"id": 300}}}, "jails.pg-1.ip: id 300",
                          "set ip explicitly"),
    "ip is the gateway": ({"jails": {"pg-1": {"id": 101}}},
                          "jails.pg-1.ip: 192.168.7.101 is the gateway", "pick another"),
    "id over the epair unit limit": ({"jails": {"pg-1": {"id": 32768, "ip": "192.168.7.5"}}},
                                     "jails.pg-1.id: 32768 is over 32767, the highest unit an "
                                     "epair can have", "from 1 to 32767"),
    "devfs ruleset 0": ({"devfs_ruleset": 0}, "devfs_ruleset: 0 is no ruleset at all",
                        "every device of the host"),
    "dhcp behind a ruleset that hides bpf": (
        {"jails": {"pg-1": {"id": 111, "ip": "dhcp"}}},
        "jails.pg-1.ip: dhcp needs /dev/bpf in the jail, which devfs ruleset 5",
        "unhides bpf"),
    "jail names rc.conf cannot tell apart": (
        {"jails": {"pg-1": {"id": 111}, "pg_1": {"id": 112}}},
        "jails.pg_1.name: jail_pg_1_conf is already used by jail pg-1", "rename one"),
    "i386 for FreeBSD 15": ({"arch": "i386", "patch": "p0"},
                            "release: 15.1-RELEASE has no i386 build", "arch: amd64"),
    "jail patch pin not a level": ({"jails": {"pg-1": {"id": 111, "patch": "latest"}}},
                                   "jails.pg-1.patch: 'latest' is not valid", "such as p3"),
    "keep_levels 0": ({"keep_levels": 0}, "keep_levels: 0", "1 or more"),
    "base.txz for FreeBSD 16": ({"release": "16.0-RELEASE", "source": "base.txz"},
                                "source: 16.0-RELEASE has no base.txz", "source: pkgbase"),
    "pkgbase for 14.x": ({"release": "14.4-RELEASE", "source": "pkgbase"},
                         "source: 14.4-RELEASE has no pkgbase release repository",
                         "source: base.txz"),
    "a jail's source without its release": (
        {"jails": {"pg-1": {"id": 111, "source": "pkgbase"}}},
        "jails.pg-1.source: goes with release", "top-level source"),
    "two sources for one release": (
        {"jails": {"pg-1": {"id": 111, "release": "15.1-RELEASE", "source": "pkgbase"},
                   "dev": {"id": 112, "release": "15.1-RELEASE", "source": "base.txz"}}},
        "jails.dev.source: 15.1-RELEASE is pkgbase for jail pg-1", "say it once"),
    "signature neither": ({"signature": "maybe"}, "signature: 'maybe'", "none in so many words"),
    "id not a number": ({"jails": {"pg-1": {"id": "111; reboot"}}},
                        "jails.pg-1.id: '111; reboot' is not a positive integer", "integer"),
    "gateway outside subnet": ({"network": {"bridge": "igc0bridge", "subnet": "192.168.7.0/24",
                                            "gateway": "10.0.0.1"}},
                               "network.gateway: 10.0.0.1 is not a host address", "router"),
    "bridge name too long": ({"network": {"bridge": "averyverylongbridge0",
                                          "subnet": "192.168.7.0/24",
                                          "gateway": "192.168.7.101"}},
                             "network.bridge: 'averyverylongbridge0' is not an interface name",
                             "at most 15"),
    "unsafe zfs root": ({"zfs": {"root": "tank/jails; rm -rf /"}}, "zfs.root:",
                        "safe dataset name"),
    "unsafe path": ({"paths": {"jail_conf": "/etc/jail conf"}}, "paths.jail_conf:",
                    "absolute path"),
    "relative resolv.conf": ({"resolv_conf": "resolv.conf"}, "resolv_conf:", "absolute path"),
    "bad release": ({"release": "14.3-RELEASE/../../x"}, "release:", "15.1-RELEASE"),
    "bad patch": ({"patch": "newest"}, "patch: 'newest' is not valid", "p3"),
    "update_check not seconds": ({"update_check": "1h"}, "update_check: '1h' is not valid",
                                 "seconds"),
    "negative update_check": ({"update_check": -1}, "update_check: -1 is not valid",
                              "0: every run"),
    "bad timezone": ({"timezone": "../../etc/passwd"}, "timezone:", "Asia/Shanghai"),
    "bad mirror": ({"mirror": "ftp://example.org"}, "mirror:", "http(s):// or file://"),
    "bad jail release": ({"jails": {"pg-1": {"id": 111, "release": "latest"}}},
                         "jails.pg-1.release: 'latest' is not valid", "15.1-RELEASE"),
}
UNSAFE_NAMES = ["web.1", "../x", "a;rm -rf /", "123", "$(id)", "a b", "-x", 'q"uote', "é"]


def good_config(tmp_path: Path) -> dict[str, Any]:
    """The tests' usual config (tests/support/host.py), as a dict; nothing is created."""
    return Host(pool="", root="zdata/jails", tmp=tmp_path, mirror_url="http://127.0.0.1:9").config()


def problems_of(tmp_path: Path, config: dict[str, Any] | None, raw: str | None = None,
                ) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False) if raw is None else raw)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def expect_rejected(tmp_path: Path, config: dict[str, Any] | None, key: str, *fix: str,
                    raw: str | None = None) -> None:
    problems = problems_of(tmp_path, config, raw)
    named = [p for p in problems if p.startswith(f"{tmp_path / 'config.yaml'}: {key}")]
    assert named, problems
    for words in fix:
        assert words in named[0], named[0]


def changed(tmp_path: Path, change: dict[str, Any]) -> dict[str, Any]:
    config = good_config(tmp_path)
    for k, v in change.items():
        if v is None:
            config.pop(k)
        else:
            config[k] = v
    return config


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_is_rejected_naming_the_key_and_the_fix(tmp_path: Path, case: str) -> None:
    change, key, fix = BAD_CONFIGS[case]
    expect_rejected(tmp_path, changed(tmp_path, change), key, fix)


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_unsafe_jail_name_is_rejected(tmp_path: Path, name: str) -> None:
    config = good_config(tmp_path)
    config["jails"] = {name: {"id": 111}}
    expect_rejected(tmp_path, config, f"jails.{name}: jail name", "use letters, digits")


def test_duplicate_yaml_key_is_rejected(tmp_path: Path) -> None:
    text = yaml.safe_dump(good_config(tmp_path), sort_keys=False)
    raw = text.replace("jails:\n", "jails:\n  pg-1:\n    id: 5\n")
    problems = problems_of(tmp_path, None, raw)
    assert len(problems) == 1 and "key 'pg-1' appears twice" in problems[0]


def test_bad_config_stops_doit_before_any_command(host: Host) -> None:
    change, key, fix = BAD_CONFIGS["duplicate id"]
    host.write_config(changed(host.tmp, change))
    run = host.doit("run", "jail:pg-1", write=False)
    assert run.returncode != 0
    assert key in run.output and fix in run.output, run.output
    assert run.commands == [] and run.calls == []  # nothing ran, not even a zfs listing
    assert not host.state_dir.exists()
    assert host.names() == []
    assert not (host.etc / "jail.conf").exists()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("release: 14.3-RELEASE\nzfs: {root: tank/jails}\nextra: 1\n"
                    "network: {bridge: br0, subnet: 10.1.0.0/24, gateway: 10.1.0.1}\n"
                    "jails: {a: {id: 2}, b: {id: 2, ip: 10.1.0.9}, c.d: {id: 3}, e: {id: 1}}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = {p.split(": ")[1] for p in info.value.problems}
    assert keys == {"extra", "jails.c.d", "jails.b.id", "jails.e.ip"}


def test_good_config_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("release: 14.3-RELEASE\nzfs: {root: zdata/jails}\n"
                    "network: {bridge: igc0bridge, subnet: 192.168.7.0/24, "
                    "gateway: 192.168.7.101}\njails: {pg-1: {id: 111}}\n")
    config = load_config(path)
    assert ReleasePlan(config, "14.4-RELEASE").mirror_dir == (
        "https://download.freebsd.org/ftp/releases/amd64/amd64/14.4-RELEASE")
    assert str(config.jail("pg-1").ip) == "192.168.7.111/24"
    assert config.jail("pg-1").epair == "epair111"
    assert config.paths.jail_conf_d == Path("/etc/jail.conf.d")
    assert (config.patch, config.timezone) == ("latest", "host")
