"""A step's named inputs: its stamp is their digest, and what `doit info` says changed.

The stamp on a dataset is a digest, which says that something changed but not what. So each
time a step writes its stamp, the named inputs it was made from are kept in the state
directory under that stamp (`inputs/<stamp>.json`). When a dataset's stamp is not the one
wanted, the check looks up the inputs of the stamp the dataset has and names each that
differs: `timezone: Asia/Shanghai -> UTC`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tasks.files import write_atomic


def digest(*parts: object) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def file_digest(path: Path) -> str:
    """Digest of a small host file (localtime, resolv.conf); a missing file digests as such."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except FileNotFoundError:
        return "missing"


@dataclass(frozen=True)
class Inputs:
    """Named inputs in a fixed order; the stamp digests their values in that order (so the
    stamps are those of thinjail before inputs had names)."""

    items: tuple[tuple[str, object], ...]

    @property
    def stamp(self) -> str:
        return digest(*(value for _, value in self.items))

    def named(self) -> dict[str, str]:
        return {name: json.dumps(value, default=str) if not isinstance(value, str) else value
                for name, value in self.items}


def inputs(**named: object) -> Inputs:
    return Inputs(tuple(named.items()))


@dataclass(frozen=True)
class InputsRecord:
    """The named inputs of every stamp thinjail wrote, one small file per stamp."""

    directory: Path

    def save(self, made_from: Inputs) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / f"{made_from.stamp}.json",
                     json.dumps(made_from.named(), indent=1).encode())

    def load(self, stamp: str) -> Mapping[str, str] | None:
        try:
            data = json.loads((self.directory / f"{stamp}.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def changes(self, had: str | None, wanted: Inputs) -> str:
        """What changed from the inputs of stamp `had` to `wanted`, in words."""
        if had is None:
            return "not made yet"
        before = self.load(had)
        if before is None:
            return f"made from other inputs (stamp {had}, its inputs not recorded)"
        now = wanted.named()
        changed = [f"{name}: {before.get(name, '-')} -> {value}" for name, value in now.items()
                   if before.get(name) != value]
        return "; ".join(changed) or f"made from other inputs (stamp {had})"
