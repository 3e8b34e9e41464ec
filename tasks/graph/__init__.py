"""The task graph: which step runs when, and what it depends on. One module per stage; the
steps themselves live in tasks/steps/ and know nothing of doit."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from doit import create_after
from doit.exceptions import TaskFailed

from tasks.context import Context
from tasks.errors import ThinjailError, one_line
from tasks.inputs import InputsRecord, StepInputs

TaskGenerator = Callable[[Context], Any]


def run_step(dry_run: bool, doc: str, function: Callable[..., object],
             **arguments: object) -> TaskFailed | None:
    """doit action wrapper. A dry-run prints what the step would do instead of doing it; a
    ThinjailError, or an OSError of the host (a rename, a full disk), becomes a one-line
    task failure, not a traceback."""
    if dry_run:
        print(f"[dry-run] would {doc}")
        return None
    try:
        function(**arguments)
    except ThinjailError as exc:
        return TaskFailed(str(exc))
    except OSError as exc:
        return TaskFailed(f"could not {doc}: {one_line(exc)}")
    return None


def step(ctx: Context, doc: str, function: Callable[..., object],
         arguments: Mapping[str, object], made_from: tuple[StepInputs, ...] = (),
         **fields: Any) -> dict[str, Any]:
    """A task dict whose action calls a step function with named `arguments` (a module-level
    function and picklable arguments, so `doit -n` can run it in another process). When it
    succeeds, the named inputs its stamps were `made_from` are recorded (tasks/inputs.py)."""
    actions: list[Any] = [(run_step, [ctx.runner.dry_run, doc, function], dict(arguments))]
    if made_from and not ctx.runner.dry_run:
        actions.append((run_step, [False, f"record the inputs of: {doc}", _record_inputs],
                        {"record": ctx.checks.record, "made_from": made_from}))
    return {"doc": doc, "actions": actions, **fields}


def _record_inputs(record: InputsRecord, made_from: tuple[StepInputs, ...]) -> None:
    for named in made_from:
        record.save(named)


def _generate(generator: TaskGenerator, context: Context) -> Any:
    try:
        tasks = generator(context)
        if isinstance(tasks, dict):
            return tasks
        made = list(tasks)  # generated here, so errors surface here
    except (ThinjailError, OSError) as error:  # e.g. ZFS unreadable: one line, no traceback
        sys.exit(f"thinjail: {one_line(error)}")
    # The group task (`doit start` for every start:<name>) has no actions of its own, so it is
    # up to date by definition: doit then reports "success" only for tasks whose actions ran,
    # which is what "changed" means to a caller (the Ansible role).
    if any("name" in task for task in made):  # subtasks, not basename-only tasks
        made.insert(0, {"name": None, "doc": generator.__doc__, "uptodate": [True]})
    return (task for task in made)  # doit wants a generator


def bind(generator: TaskGenerator, context: Context, on_demand: bool = False,
         ) -> Callable[[], Any]:
    """A doit `task_*` function for a generator that takes the run's context; keeps the
    generator's docstring, which `doit list` shows. `on_demand` tasks are made only when a
    run names them (doit's delayed creation): a run of other tasks skips making them, while
    `doit list` and `doit info` still show each one."""

    # One line: doit reads each task function's source to order them (inspect.getsourcelines
    # tokenizes its whole body, a cost every run pays once per task family).
    def task() -> Any: return _generate(generator, context)

    task.__doc__ = generator.__doc__
    task.__name__ = generator.__name__
    return create_after()(task) if on_demand else task
