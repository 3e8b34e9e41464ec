"""thinjail: VNET + NullFS thin jails on FreeBSD as a doit task graph.

Run `doit` (all jails), `doit jail:<name>` (one jail), `doit list` (the graph).
Pass `config=<file>` to use another config than config.yaml beside this file,
`dry_run=1` to print what would be done instead of doing it, `image_dir=<dir>` to choose
where `doit image` writes (`level=pN`: which patch level; the current one by default),
`image=<dir or URL>` to import templates instead of building them,
`check_updates=1` to ask freebsd-update for the latest patch level now (see `update_check`),
`dry_run=1 state_of=<config in use>` to plan a proposed config against the host's state,
`format=json` to have `doit status` print JSON.
"""

import sys
from pathlib import Path
from typing import NoReturn

from doit import get_var

from tasks.errors import ThinjailError, one_line
from tasks.invocation import parse_invocation
from tasks.zfs import ListingAhead

CONFIG = Path(get_var("config", str(Path(__file__).with_name("config.yaml"))))


def flag(name: str) -> bool:
    return get_var(name, "0").lower() in ("1", "yes", "true")


def fail(error: Exception) -> NoReturn:
    sys.exit(f"thinjail: {one_line(error)}")


DRY_RUN = flag("dry_run")

# doit commands that only report; every other one may change the host.
REPORTING = {"list", "info", "help", "dumpdb", "tabcompletion", "strace"}

try:
    # Bad input stops here, before any command has run.
    RUN = parse_invocation(CONFIG, dry_run=DRY_RUN, image_dir=get_var("image_dir", None),
                           image=get_var("image", None), check_updates=flag("check_updates"),
                           state_of=get_var("state_of", None), tasks=tuple(sys.argv[1:]),
                           level=get_var("level", None),
                           output_format=get_var("format", "table"))
except (ThinjailError, OSError) as error:
    fail(error)
# ZFS lists the parent dataset while the rest of thinjail is imported: on a no-op, that
# listing is the largest cost. (pyproject.toml lets these imports follow code.)
LISTING = ListingAhead(RUN.runner, RUN.config.zfs_root, RUN.state.zfs_generation)

from tasks import doit_state
from tasks.context import load_context
from tasks.graph import bind, host, image, jails, lifecycle, release
from tasks.locks import hold_run_lock

try:
    CONTEXT = load_context(RUN, LISTING)
    reporting = bool(REPORTING & set(sys.argv[1:2]))
    if not reporting and not DRY_RUN:
        # One run per config at a time; held until this process ends.
        RUN_LOCK = hold_run_lock(CONTEXT.state.run_lock)
    # A dry-run and a report read a copy of doit's state: they change nothing.
    STATE_FILE, warnings = doit_state.state_file(CONTEXT.state.doit_db, copy=DRY_RUN or reporting)
    if not reporting:
        CONTEXT.prefetch()
        warnings += CONTEXT.warnings()
    for warning in warnings:
        print(f"thinjail: warning: {warning}", file=sys.stderr)
except (ThinjailError, OSError) as error:
    # Another run in progress, or ZFS unreadable, stops here, before any command that changes.
    fail(error)

DOIT_CONFIG = {
    "default_tasks": ["jail", "orphans"],
    "dep_file": str(STATE_FILE),
    "backend": doit_state.BACKEND,
    "verbosity": 2,
}

# Host stage
task_host = bind(host.task_host, CONTEXT)
# Release stage: fetch -> extract -> tzdns -> update -> skeleton -> certs -> snapshot
if CONTEXT.image_source:  # the templates come from an image: fetch ... skeleton are current
    task_image_import = bind(image.task_image_import, CONTEXT)
task_fetch = bind(release.task_fetch, CONTEXT)
task_extract = bind(release.task_extract, CONTEXT)
task_tzdns = bind(release.task_tzdns, CONTEXT)
task_update = bind(release.task_update, CONTEXT)
task_skeleton = bind(release.task_skeleton, CONTEXT)
task_certs = bind(release.task_certs, CONTEXT)
task_snapshot = bind(release.task_snapshot, CONTEXT)
task_image = bind(image.task_image, CONTEXT)
# Jail stage, per jail: clone -> fstab -> conf -> rc -> start -> provision
task_jail_conf = bind(jails.task_jail_conf, CONTEXT)
task_clone = bind(jails.task_clone, CONTEXT)
task_fstab = bind(jails.task_fstab, CONTEXT)
task_conf = bind(jails.task_conf, CONTEXT)
task_rc = bind(jails.task_rc, CONTEXT)
task_start = bind(jails.task_start, CONTEXT)
task_provision = bind(jails.task_provision, CONTEXT)
task_jail = bind(jails.task_jail, CONTEXT)
task_rollback = bind(jails.task_rollback, CONTEXT, on_demand=True)
# Lifecycle, by name only: stop, restart, destroy:<name>, purge; status and the orphan report.
# A run makes stop:*, restart:*, rollback:* and purge only when it names them.
# destroy:<name> is always made: `doit destroy` alone must fail as no task, not pass as an
# empty group.
task_stop = bind(lifecycle.task_stop, CONTEXT, on_demand=True)
task_restart = bind(lifecycle.task_restart, CONTEXT, on_demand=True)
task_destroy = bind(lifecycle.task_destroy, CONTEXT)
task_purge = bind(lifecycle.task_purge, CONTEXT, on_demand=True)
task_orphans = bind(lifecycle.task_orphans, CONTEXT)
task_status = bind(lifecycle.task_status, CONTEXT)
