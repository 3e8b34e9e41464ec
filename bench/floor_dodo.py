"""doit's own floor for bench/noop.py: `count` tasks with trivial actions whose uptodate is
True, in a graph of the same shape (a chain per jail), on the same backend as thinjail
(tasks/doit_state.py; run from elsewhere, this file cannot import it)."""

from doit import get_var

COUNT = int(get_var("count", "10"))
DOIT_CONFIG = {"backend": "sqlite3", "dep_file": get_var("dep_file", ".floor.db"),
               "verbosity": 2, "default_tasks": ["floor"]}


def noop() -> None:
    pass


def task_floor():
    """Trivial up-to-date tasks."""
    for i in range(COUNT):
        yield {"name": str(i), "actions": [noop], "uptodate": [True],
               "task_dep": [f"floor:{i - 1}"] if i else []}
