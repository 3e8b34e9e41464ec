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
from functools import cached_property
from pathlib import Path
from typing import ClassVar

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


class StepInputs:
    """What one step makes its result from and where it works: a frozen dataclass per step
    (beside the step), built once per run by plan.py and passed, the same object, to the step
    and to its live check, so a step's inputs are written once.

    `STAMPED` names, in order, the fields the stamp digests (a `version` among them is a class
    constant, bumped when the step's code changes what it makes). The other fields name the
    datasets and paths the step works on, which the dataset carrying the stamp already pins.
    The stamp digests the values alone, in that order, so stamps are those of thinjail before
    inputs had names."""

    STEP: ClassVar[str]
    STAMPED: ClassVar[tuple[str, ...]]

    @cached_property
    def _items(self) -> tuple[tuple[str, object], ...]:
        return (("step", self.STEP), *((name, getattr(self, name)) for name in self.STAMPED))

    @cached_property
    def stamp(self) -> str:
        return digest(*(value for _, value in self._items))

    def named(self) -> dict[str, str]:
        return {name: json.dumps(value, default=str) if not isinstance(value, str) else value
                for name, value in self._items}


@dataclass(frozen=True)
class InputsRecord:
    """The named inputs of every stamp thinjail wrote, one small file per stamp."""

    directory: Path

    def save(self, made_from: StepInputs) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_atomic(self.directory / f"{made_from.stamp}.json",
                     json.dumps(made_from.named(), indent=1).encode())

    def load(self, stamp: str) -> Mapping[str, str] | None:
        try:
            data = json.loads((self.directory / f"{stamp}.json").read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def changes(self, had: str | None, wanted: StepInputs) -> str:
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
