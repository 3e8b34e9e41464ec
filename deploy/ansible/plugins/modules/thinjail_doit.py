#!/usr/bin/python
"""Ansible module: run thinjail's doit graph on a jail host and report it the Ansible way."""

from __future__ import annotations

import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: thinjail_doit
short_description: Run thinjail's doit task graph on a FreeBSD jail host
version_added: "0.1.0"
author:
  - thinjail developers
description:
  - Runs C(doit run) with doit's JSON reporter and reports C(changed) when doit ran at least
    one task, C(ok) when every task was up to date, and C(failed) with the failing task and
    its one-line message otherwise.
  - The orphan report and the status table change nothing. What they print comes back as
    RV(reports), and each orphan also as a warning.
  - In check mode it runs thinjail's dry-run (C(dry_run=1)), which changes nothing, and
    reports C(changed) when a real run would run a task.
options:
  project:
    description: Directory holding thinjail's C(dodo.py) on the host.
    type: path
    required: true
  config:
    description: The host's C(config.yaml).
    type: path
    required: true
  tasks:
    description:
      - doit tasks to run, such as C(jail:pg-1).
      - Empty for doit's default, every jail.
    type: list
    elements: str
    default: []
  python:
    description:
      - Interpreter with doit installed, run as C(<python> -m doit).
      - Default the C(doit) command on the host's E(PATH), which C(devel/py-doit) installs
        for the ports tree's default Python.
    type: path
  proposed_config:
    description:
      - In check mode, the C(config.yaml) text a real run would write first. The dry-run
        plans it against the state of O(config).
      - Ignored outside check mode.
    type: str
requirements:
  - thinjail and doit on the jail host
notes:
  - Supports check mode.
"""

EXAMPLES = r"""
- name: Build and start every jail of the host
  thinjail.jails.thinjail_doit:
    project: /usr/local/thinjail/current
    config: /usr/local/etc/thinjail/config.yaml

- name: Restart one jail
  thinjail.jails.thinjail_doit:
    project: /usr/local/thinjail/current
    config: /usr/local/etc/thinjail/config.yaml
    tasks: ["restart:pg-1"]
"""

RETURN = r"""
ran:
  description: Tasks whose actions ran (in check mode, would run); reports are not counted.
  returned: always
  type: list
  elements: str
  sample: ["clone:pg-1", "start:pg-1"]
reports:
  description: What the reporting tasks (orphans, status) printed, by task.
  returned: success
  type: dict
  sample: {"orphans": "orphan: jail old is not in config.yaml ..."}
task:
  description: The failing task, when one failed.
  returned: failure
  type: str
  sample: "start:pg-1"
cmd:
  description: The doit command that ran.
  returned: when doit ran
  type: list
  elements: str
"""


# Tasks that only print (the orphan report every run includes, the status table): what they
# say is passed on, and their running is not a change to the host.
REPORTS = {"orphans", "status"}


def summarize(report: dict) -> tuple[list[str], dict[str, str], list[tuple[str, str]]]:
    """The tasks that ran, what the reporting tasks said, and the (task, message) pairs that
    failed. Group tasks such as `jail:pg-1` are up to date by definition in thinjail, so
    "success" means that a task's actions ran."""
    ran, reports, failed = [], {}, []
    for task in report.get("tasks", []):
        if task.get("result") == "success":
            if task["name"] in REPORTS:
                reports[task["name"]] = task.get("out") or ""
            else:
                ran.append(task["name"])
        elif task.get("result") == "fail":
            message = (task.get("error") or "").strip().splitlines() or ["failed"]
            failed.append((task["name"], message[-1]))
    return ran, reports, failed


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project": {"type": "path", "required": True},
            "config": {"type": "path", "required": True},
            "tasks": {"type": "list", "elements": "str", "default": []},
            "python": {"type": "path"},
            "proposed_config": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    dodo = os.path.join(params["project"], "dodo.py")
    if module.check_mode and not os.path.exists(dodo):
        module.exit_json(changed=True, ran=[], msg="thinjail is not on this host yet: a real "
                         "run puts it there and builds every jail")
    doit = [params["python"], "-m", "doit"] if params["python"] else [
        module.get_bin_path("doit", required=True, opt_dirs=["/usr/local/bin"])]
    argv = [*doit, "run", "-f", dodo, "--reporter", "json", *params["tasks"]]
    with tempfile.TemporaryDirectory(prefix="thinjail-check-") as scratch:
        if module.check_mode and params["proposed_config"] is not None:
            proposed = os.path.join(scratch, "config.yaml")
            with open(proposed, "w") as f:
                f.write(params["proposed_config"])
            argv += [f"config={proposed}", f"state_of={params['config']}", "dry_run=1"]
        else:
            argv += [f"config={params['config']}", *(["dry_run=1"] if module.check_mode else [])]
        rc, out, err = module.run_command(argv)
    try:
        report = json.loads(out)
    except ValueError:
        # doit stopped before running any task: thinjail refused the config (one line per
        # problem), another run holds the lock, or doit itself is missing.
        lines = (err.strip() or out.strip() or f"doit exited with {rc}").splitlines()
        module.fail_json(msg=" ".join(line.strip() for line in lines[-10:]), rc=rc, cmd=argv,
                         stderr=err, ran=[])
    ran, reports, failed = summarize(report)
    for line in reports.get("orphans", "").splitlines():
        if line.startswith("orphan:"):
            module.warn(line)
    if failed or rc != 0:
        task, message = failed[0] if failed else ("", (err.strip() or "doit failed")
                                                  .splitlines()[-1])
        module.fail_json(msg=f"{task}: {message}" if task else message, task=task, rc=rc,
                         cmd=argv, ran=ran, reports=reports, changed=bool(ran))
    module.exit_json(changed=bool(ran), ran=ran, reports=reports, cmd=argv)


if __name__ == "__main__":
    main()
