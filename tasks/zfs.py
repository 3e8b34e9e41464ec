"""ZFS access: one cached listing per run, stamps as user properties, paths from mountpoints.

The listing is a single `zfs get -r` over the parent dataset. Our own changes invalidate it
through a generation file, so processes of a parallel doit run (`-n`) see each other's changes.
A run starts it as soon as its config is checked (ListingAhead): on a no-op it is the largest
cost, and it then overlaps the import of the rest of thinjail.
Only the subset of zfs(8) that both FreeBSD's OpenZFS and zfs-fuse (pool v23) accept is used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from tasks.errors import CommandError, ThinjailError, last_lines
from tasks.files import write_atomic
from tasks.runner import Ahead, Runner

STAMP_PREFIX = "thinjail:"
# The stamps steps write, and the mark on every dataset thinjail created (so it never
# destroys one it did not create). Listed by name so the one listing fetches them all.
STAMP_KEYS = ("extract", "tzdns", "update", "skeleton", "certs", "patch", "installed", "eol",
              "provision", "patched", "from")
CREATED = "created"
USER_PROPS = (*STAMP_KEYS, CREATED)
NATIVE_PROPS = ("type", "mountpoint", "mounted", "canmount", "origin", "used")
BUSY_RETRY_SECONDS = (0.25, 0.5, 1, 2, 4)


@dataclass
class Dataset:
    name: str
    type: str = ""
    mountpoint: str = "-"
    mounted: str = "-"
    canmount: str = "on"
    origin: str | None = None
    used: int = 0
    stamps: dict[str, str] = field(default_factory=dict)


class ListingAhead:
    """The listing of a parent dataset, started in a thread before it is needed."""

    def __init__(self, runner: Runner, root: str, generation_file: Path) -> None:
        self.root = root
        self.generation = _generation(generation_file)  # taken before the listing is
        self._ahead = Ahead(lambda: _list(runner, root))

    def result(self) -> dict[str, Dataset] | None:
        """The listing, or None: asked in another process, or failed (the run's own listing
        then reports why)."""
        try:
            return self._ahead.result()
        except ThinjailError:
            return None


class Zfs:
    """ZFS state under one parent dataset, listed once and cached until we change it."""

    def __init__(self, runner: Runner, root: str, generation_file: Path,
                 ahead: ListingAhead | None = None) -> None:
        self.runner = runner
        self.root = root
        self.generation_file = generation_file
        self._ahead = ahead  # the listing of root, started early (dodo.py)
        self._cache: dict[str, Dataset] | None = None
        self._cache_generation: tuple[int, int] | None = None
        self._ancestors: dict[str, str] | None = None

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_ahead": None}  # a thread does not cross processes

    # reading -----------------------------------------------------------------------------

    def datasets(self) -> dict[str, Dataset]:
        generation = _generation(self.generation_file)
        if self._cache is None and self._ahead is not None:
            ahead, self._ahead = self._ahead, None
            self._cache, self._cache_generation = ahead.result(), ahead.generation
        if self._cache is None or generation != self._cache_generation:
            self._cache = _list(self.runner, self.root)
            self._cache_generation = generation
        return self._cache

    def get(self, name: str) -> Dataset | None:
        return self.datasets().get(name)

    def exists(self, name: str) -> bool:
        return name in self.datasets()

    def stamp(self, name: str, key: str) -> str | None:
        ds = self.get(name)
        return None if ds is None else ds.stamps.get(key)

    def directory(self, name: str) -> Path:
        """The directory to work in for a dataset: its mountpoint, refused while the dataset
        exists unmounted (writing into the empty directory under it would hide the data)."""
        ds = self.get(name)
        if ds is not None and ds.mounted == "no":
            raise CommandError(f"zfs: dataset {name} is not mounted: `zfs mount {name}` "
                               "and rerun")
        return self.mountpoint(name)

    def mountpoint(self, name: str) -> Path:
        """Where the dataset is (or, once created with inherited mountpoint, will be) mounted."""
        known = self.datasets()
        if name in known and known[name].mountpoint.startswith("/"):
            return Path(known[name].mountpoint)  # the common case, cheap: asked per jail
        path = PurePosixPath(name)
        ancestors = [str(p) for p in [path, *path.parents] if str(p) != "."]
        # Datasets under the root are in the listing; the pool's are asked only when the
        # root itself does not exist yet.
        for ancestor in ancestors:
            if ancestor in known:
                return _below(known[ancestor].mountpoint, ancestor, path.relative_to(ancestor))
        mounts = self._ancestor_mounts()
        for ancestor in ancestors:
            if ancestor in mounts:
                return _below(mounts[ancestor], ancestor, path.relative_to(ancestor))
        raise CommandError(f"zfs: no pool holds {name}: create the pool or fix zfs.root")

    def _ancestor_mounts(self) -> dict[str, str]:
        """Mountpoints of the parent dataset's ancestors, asked only while it does not exist."""
        if self._ancestors is None:
            parents = [str(p) for p in PurePosixPath(self.root).parents if str(p) != "."]
            result = self.runner.run(["zfs", "get", "-H", "-o", "name,value", "mountpoint",
                                      *parents], step="zfs list", changes=False,
                                     ok_codes=(0, 1)) if parents else None
            self._ancestors = dict(
                line.split("\t", 1) for line in (result.stdout.splitlines() if result else []))
        return self._ancestors

    # changing ----------------------------------------------------------------------------

    def invalidate(self) -> None:
        self._cache = None
        if not self.runner.dry_run:
            # Replaced, not rewritten: a new file is a new identity for _generation.
            write_atomic(self.generation_file, os.urandom(16).hex().encode())

    def _change(self, argv: list[str], step: str, retry_busy: bool = False) -> None:
        try:
            if retry_busy:
                _retrying_busy(lambda: self.runner.run(argv, step=step))
            else:
                self.runner.run(argv, step=step)
        finally:
            self.invalidate()

    def create(self, name: str, step: str) -> None:
        self._change(["zfs", "create", "-p", "-o", f"{STAMP_PREFIX}{CREATED}={step}", name], step)

    def unmounted_ours(self) -> list[str]:
        """The file systems thinjail created that are not mounted though they should be
        (canmount=on, a mountpoint): a create, clone, receive or rename killed between
        making the dataset and mounting it leaves one so."""
        return sorted(ds.name for ds in self.datasets().values()
                      if ds.type == "filesystem" and ds.mounted == "no"
                      and ds.canmount == "on" and ds.mountpoint.startswith("/")
                      and CREATED in ds.stamps)

    def mount(self, name: str, step: str) -> None:
        self._change(["zfs", "mount", name], step, retry_busy=True)

    def snapshot(self, snapshot: str, step: str) -> None:
        self._change(["zfs", "snapshot", snapshot], step)

    def clone(self, snapshot: str, name: str, step: str) -> None:
        self._change(["zfs", "clone", "-o", f"{STAMP_PREFIX}{CREATED}={step}", snapshot, name],
                     step)

    def rename(self, name: str, new_name: str, step: str) -> None:
        """Rename a file system, unmounted meanwhile: zfs-fuse keeps a mounted dataset busy
        for a rename, and both it and OpenZFS rename an unmounted one at once. A rename that
        fails as busy has mounted the dataset again, so each retry unmounts it first."""
        def attempt() -> None:
            ds = self.get(name)
            if ds is not None and ds.mounted == "yes":
                self._change(["zfs", "umount", name], step)
            self._change(["zfs", "rename", name, new_name], step)

        _retrying_busy(attempt)
        self.mount(new_name, step)

    def created_by_us(self, name: str) -> bool:
        return self.stamp(name, CREATED) is not None

    def children(self, parent: str) -> list[str]:
        """The last name component of each file system directly below parent."""
        prefix = f"{parent}/"
        return sorted(name[len(prefix):] for name, ds in self.datasets().items()
                      if name.startswith(prefix) and "/" not in name[len(prefix):]
                      and ds.type == "filesystem")

    def destroy(self, name: str, step: str, recursive: bool = False) -> None:
        """Destroy one dataset or snapshot; `recursive` (its snapshots and children) only for
        a trash entry the user purges, or a patch level left unfinished, which nothing was
        cloned from. Never with dependent clones (-R)."""
        self._change(["zfs", "destroy", *(["-r"] if recursive else []), name], step,
                     retry_busy=True)

    def promote(self, name: str, step: str) -> None:
        """Make a clone independent of its origin, which becomes its clone (the origin's
        snapshots up to the cloned one move to it), so the origin can be destroyed."""
        self._change(["zfs", "promote", name], step, retry_busy=True)

    def clones(self, name: str) -> list[str]:
        """The datasets cloned from one of name's snapshots."""
        return sorted(ds.name for ds in self.datasets().values()
                      if ds.origin and ds.origin.startswith(f"{name}@"))

    def set_readonly(self, name: str, step: str) -> None:
        self._change(["zfs", "set", "readonly=on", name], step)

    def set_stamp(self, name: str, key: str, value: str, step: str) -> None:
        self._change(["zfs", "set", f"{STAMP_PREFIX}{key}={value}", name], step)

    def clear_stamps(self, name: str, keys: tuple[str, ...], step: str) -> None:
        """Remove stamps so that nothing half-redone looks complete."""
        present = [k for k in keys if self.stamp(name, k) is not None]
        for key in present:
            self._change(["zfs", "inherit", f"{STAMP_PREFIX}{key}", name], step)


def _list(runner: Runner, root: str) -> dict[str, Dataset]:
    props = ",".join([*NATIVE_PROPS, *(STAMP_PREFIX + k for k in USER_PROPS)])
    result = runner.run(
        ["zfs", "get", "-H", "-p", "-r", "-o", "name,property,value,source", props,
         root], step="zfs list", changes=False, ok_codes=(0, 1))
    if result.returncode != 0:
        if "does not exist" in result.stderr:
            return {}
        raise CommandError(f"zfs list: `zfs get ... {root}` failed: "
                           f"{last_lines(result.stderr)}")
    found: dict[str, Dataset] = {}
    for line in result.stdout.splitlines():
        name, prop, value, source = line.split("\t")
        ds = found.setdefault(name, Dataset(name))
        if prop.startswith(STAMP_PREFIX):
            # Only a stamp set on the dataset itself (or received with it from an image)
            # counts, never an inherited one.
            if source in ("local", "received") and value != "-":
                ds.stamps[prop[len(STAMP_PREFIX):]] = value
        elif prop == "used":
            ds.used = int(value) if value.isdigit() else 0
        elif prop == "origin":
            ds.origin = None if value == "-" else value
        else:
            setattr(ds, prop, value)
    return found



def _generation(generation_file: Path) -> tuple[int, int] | None:
    """Identity of the generation file, which every change replaces: a stat, not a read,
    because every ZFS question of a run asks it."""
    try:
        st = os.stat(generation_file)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def _retrying_busy(attempt: Callable[[], object]) -> None:
    """"dataset is busy" passes within seconds (zfs-fuse after writes, a jail that is still
    dying on FreeBSD): retry a few times, then give up."""
    delays = list(BUSY_RETRY_SECONDS)
    while True:
        try:
            attempt()
            return
        except CommandError as exc:
            if not delays or "busy" not in str(exc):
                raise
            time.sleep(delays.pop(0))


def _below(mountpoint: str, dataset: str, relative: PurePosixPath) -> Path:
    if not mountpoint.startswith("/"):
        raise CommandError(f"zfs: dataset {dataset} has mountpoint={mountpoint}: thinjail "
                           "needs a mounted parent dataset (set a mountpoint)")
    return Path(mountpoint, relative)
