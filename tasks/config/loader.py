"""config.yaml read with PyYAML's safe loader, refusing duplicate keys; then validated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tasks.config.model import Config
from tasks.config.validator import parse_config
from tasks.errors import ConfigError

# libyaml's parser when PyYAML was built with it (FreeBSD's py-pyyaml is): ten times faster.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """SafeLoader that refuses duplicate mapping keys (PyYAML keeps the last one silently,
    which would merge two jails of the same name without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` merges; keys written beside it override on purpose
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int) and key in seen:
                raise ConfigError(
                    [f"line {key_node.start_mark.line + 1}: key {key!r} appears twice: "
                     "keep one"])
            if isinstance(key, str | int):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path) -> Config:
    """Read and validate config.yaml; raise ConfigError listing every problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"cannot read config {path}: {exc.strerror}"]) from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path} is not valid YAML: {exc}".replace("\n", " ")]) from exc
    except ConfigError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from exc
    return parse_config(data, path)


