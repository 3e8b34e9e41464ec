"""Hostile or broken config.yaml, generated: every input is either rejected with a clear
validation error or accepted with values that are safe wherever they go (shell words, ZFS
names, jail.conf, fstab). Never a traceback."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jailconf
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tasks.config import Config, load_config
from tasks.context import TEMPLATES_DIR
from tasks.errors import ConfigError
from tasks.graph.jails import conf_values
from tasks.plan import JailPlan, ReleasePlan
from tasks.steps.render import render

GOOD: dict[str, Any] = {
    "release": "14.3-RELEASE",
    "zfs": {"root": "zdata/jails"},
    "network": {"bridge": "igc0bridge", "subnet": "192.168.7.0/24", "gateway": "192.168.7.101"},
    "jails": {"pg-1": {"id": 111}, "dev": {"id": 253, "ip": "192.168.7.253/24"}},
}
META = ";$(){}`\"'\\|&<>*?!#~ \t\n.-/@:,="
nasty_text = st.text(alphabet=st.sampled_from(list(META) + list("abcZ019é")), max_size=30)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True), nasty_text)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(nasty_text, inner, max_size=3)), max_leaves=8)
PATHS = [("release",), ("arch",), ("mirror",), ("patch",), ("timezone",), ("resolv_conf",),
         ("devfs_ruleset",), ("image",), ("zfs", "root"), ("paths", "jail_conf"),
         ("network", "bridge"), ("network", "uplink"), ("network", "subnet"),
         ("network", "gateway"), ("network", "stable_mac"), ("jails", "pg-1", "id"),
         ("jails", "pg-1", "ip"), ("jails", "pg-1", "release"), ("jails", "pg-1", "packages"),
         ("jails", "pg-1", "services"), ("jails", "pg-1", "devfs_ruleset"), ("jails",),
         ("zfs",), ("network",), ("extra",)]
SAFE_WORD = re.compile(r"^[A-Za-z0-9_./:+@-]+$")


def mutate(config: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    config = copy.deepcopy(config)
    node = config
    for key in path[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path[-1]] = value
    return config


def check(tmp_path: Path, text: str, changed: tuple[str, ...] | None = None) -> Config | None:
    """Load text; a rejection must name the key path that was `changed` (when given), an
    acceptance must be safe."""
    path = tmp_path / "config.yaml"
    path.write_text(text)
    try:
        config = load_config(path)
    except ConfigError as error:
        assert error.problems
        keys = [p.removeprefix(f"{path}: ") for p in error.problems]
        if changed is not None:
            assert any(names_the_change(k, changed) for k in keys), (changed, error.problems)
        return None
    assert_safe(config)
    return config


def names_the_change(problem: str, changed: tuple[str, ...]) -> bool:
    """The problem is reported at the changed key, or below it (a mapping that was changed).
    A jail's id also makes its address, and a value two jails share is reported at the jail
    listed later: those are named as the ip of the changed jail, or as taken from it."""
    key = ".".join(changed)
    if problem.startswith((f"{key}: ", f"{key}.")):
        return True
    if changed in (("jails", "pg-1", "id"), ("jails", "pg-1", "ip")):
        return problem.startswith("jails.pg-1.ip: ") or "already used by jail pg-1" in problem
    return False


def assert_safe(config: Config) -> None:
    """Everything from the config that reaches a command, a dataset name or jail.conf."""
    assert SAFE_WORD.match(config.zfs_root) and SAFE_WORD.match(config.release)
    for jail in config.jails:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", jail.name) and not jail.name.isdigit()
        assert all(SAFE_WORD.match(word) for word in (*jail.packages, *jail.services))
        release = ReleasePlan(config, jail.release or config.release)
        plan = JailPlan(config, jail, release, Path("/zdata/jails"), release.base,
                        release.skeleton)
        text = render(TEMPLATES_DIR, "jail.j2", **conf_values(plan, config.network))
        parsed = jailconf.loads(text)
        assert list(parsed) == [jail.name]
        assert parsed[jail.name]["path"] == f'"{plan.jail_root}"'


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(PATHS), value=values)
def test_mutated_config(tmp_path: Path, path: tuple[str, ...], value: Any) -> None:
    check(tmp_path, yaml.safe_dump(mutate(GOOD, path, value), allow_unicode=True), path)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(name=nasty_text, jid=st.integers(min_value=-5, max_value=2**40))
def test_generated_jail_names_and_ids(tmp_path: Path, name: str, jid: int) -> None:
    config = mutate(GOOD, ("jails",), {name: {"id": jid}})
    accepted = check(tmp_path, yaml.safe_dump(config, allow_unicode=True), ("jails",))
    if accepted is not None:
        assert [j.name for j in accepted.jails] == [name] and 1 <= jid <= 254 and jid != 101


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(garbage=st.text(max_size=200))
def test_arbitrary_text(tmp_path: Path, garbage: str) -> None:
    check(tmp_path, garbage)


ANCHORS = """
release: 14.3-RELEASE
zfs: {root: zdata/jails}
network: &net {bridge: igc0bridge, subnet: 192.168.7.0/24, gateway: 192.168.7.101}
jails:
  pg-1: &base {id: 111}
  dev: *base
  web: {<<: *base, id: 112}
  bomb: &a [*net, *net, *net]
"""


def test_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    assert check(tmp_path, ANCHORS) is None  # dev repeats pg-1's id; bomb is no mapping
    ok = ANCHORS.replace("  dev: *base\n", "").replace("  bomb: &a [*net, *net, *net]\n", "")
    config = check(tmp_path, ok)
    assert config is not None and [j.id for j in config.jails] == [111, 112]


def test_unhashable_and_duplicate_keys(tmp_path: Path) -> None:
    assert check(tmp_path, "? [a, b]\n: 1\n") is None
    assert check(tmp_path, "release: a\nrelease: b\n") is None
