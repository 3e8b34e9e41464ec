#!/usr/bin/python
"""Ansible module: run thinjail's doit graph on a jail host and report it the Ansible way."""

from __future__ import annotations

DOCUMENTATION = r"""
module: thinjail_doit
short_description: Run thinjail's doit task graph on a FreeBSD jail host
version_added: "0.1.0"
author:
  - thinjail developers (@thinjail)
description:
  - Runs C(doit run) with doit's JSON reporter and reports C(changed) when doit ran at least
    one task, C(ok) when every task was up to date, and C(failed) with the failing task and
    its one-line message otherwise.
  - The orphan report and the status table change nothing. What they print comes back as
    RV(reports), and each orphan also as a warning.
  - In check mode it runs thinjail's dry-run (C(dry_run=1)), which changes nothing, and
    reports C(changed) when a real run would run a task. With C(--diff), the plan, one line
    per step a real run would take, comes back as the diff.
  - It first checks that doit is a release thinjail works with (0.36 or 0.37).
  - After a real run it reads each jail's state with C(doit status format=json) and returns
    it as the fact C(thinjail_jails).
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
      - Interpreter with doit installed, run as C(<python> -m doit). The role passes
        C(/usr/local/bin/python3), the ports tree's default Python that C(lang/python3) links
        and C(devel/py-doit) is built for.
      - Default the C(doit) command on the host's E(PATH).
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
  - Supports check mode and diff mode.
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
doit_version:
  description: The version of doit that ran.
  returned: when doit is a supported release
  type: str
  sample: "0.36.0"
lock_held:
  description: Whether the run stopped because another thinjail run holds the config's lock.
  returned: failure
  type: bool
jails:
  description:
    - Each jail after the run, as C(doit status format=json) prints it; also returned as the
      fact C(thinjail_jails).
    - C(eol) is the date from which the jail's release gets no security fixes, or C(passed),
      once its end of life has passed; otherwise null.
  returned: success, not in check mode
  type: list
  elements: dict
  sample:
    - {"name": "pg-1", "state": "running", "ip": "192.168.7.111/24", "release": "15.1-RELEASE",
       "patch": "p0", "eol": null, "origin": "15.1-RELEASE-skeleton@base-8f62cd9762",
       "used": 1204224}
"""

import json
import os
import re
import tempfile

from ansible.module_utils.basic import AnsibleModule

# Tasks that only print (the orphan report every run includes, the status table): what they
# say is passed on, and their running is not a change to the host.
REPORTS = {"orphans", "status"}
# The doit releases thinjail works with (pyproject.toml).
DOIT_VERSIONS = ((0, 36), (0, 38))
LOCK_HELD = "another thinjail run on this config is in progress"
DRY_RUN_PREFIX = "[dry-run] would "
# The user info of a URL (https://user:password@mirror/...), which no output may show.
USER_INFO = re.compile(r"://([^/@\s\"']+)@")


def summarize(report: dict) -> tuple[list[str], dict[str, str], list[tuple[str, str]], list[str]]:
    """The tasks that ran, what the reporting tasks said, the (task, message) pairs that
    failed, and the plan: each dry-run line as "<task>: would ...". Group tasks such as
    `jail:pg-1` are up to date by definition in thinjail, so "success" means that a task's
    actions ran."""
    ran, reports, failed, plan = [], {}, [], []
    for task in report.get("tasks", []):
        if task.get("result") == "success":
            if task["name"] in REPORTS:
                reports[task["name"]] = task.get("out") or ""
            else:
                ran.append(task["name"])
                plan += [f"{task['name']}: would {line[len(DRY_RUN_PREFIX):]}"
                         for line in (task.get("out") or "").splitlines()
                         if line.startswith(DRY_RUN_PREFIX)]
        elif task.get("result") == "fail":
            message = (task.get("error") or "").strip().splitlines() or ["failed"]
            failed.append((task["name"], message[-1]))
    return ran, reports, failed, plan


def doit_version(text: str) -> tuple[int, ...] | None:
    """The version `doit --version` printed on its first line, such as 0.37.0."""
    words = text.split()
    try:
        return tuple(int(part) for part in words[0].split(".")) if words else None
    except ValueError:
        return None


def supported(version: tuple[int, ...]) -> bool:
    low, high = DOIT_VERSIONS
    return low <= version[:2] < high


def last_lines(*texts: str, rc: int) -> str:
    """What doit said when it stopped before running a task, on one line."""
    for text in texts:
        if text.strip():
            return " ".join(line.strip() for line in text.strip().splitlines()[-10:])
    return f"doit exited with {rc}"


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


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
    for text in (params["proposed_config"] or "", read(params["config"])):
        module.no_log_values.update(USER_INFO.findall(text))
    dodo = os.path.join(params["project"], "dodo.py")
    if module.check_mode and not os.path.exists(dodo):
        module.exit_json(changed=True, ran=[], msg="thinjail is not on this host yet: a real "
                         "run puts it there and builds every jail")
    doit = [params["python"], "-m", "doit"] if params["python"] else [
        module.get_bin_path("doit", required=True, opt_dirs=["/usr/local/bin"])]
    rc, out, err = module.run_command([*doit, "--version"])
    version = doit_version(out) if rc == 0 else None
    if version is None or not supported(version):
        found = ".".join(map(str, version)) if version else last_lines(err, out, rc=rc)
        module.fail_json(msg=f"{' '.join(doit)}: doit {found}; thinjail needs doit >=0.36,<0.38 "
                         "(devel/py-doit, or pip install 'doit>=0.36,<0.38')", ran=[])
    facts = {"doit_version": ".".join(map(str, version))}
    run = [*doit, "run", "-f", dodo, "--reporter", "json"]
    argv = [*run, *params["tasks"]]
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
        message = last_lines(err, out, rc=rc)
        module.fail_json(msg=message, rc=rc, cmd=argv, stderr=err, ran=[],
                         lock_held=LOCK_HELD in message, **facts)
    ran, reports, failed, plan = summarize(report)
    for line in reports.get("orphans", "").splitlines():
        if line.startswith("orphan:"):
            module.warn(line)
    result = {"ran": ran, "reports": reports, "cmd": argv, "changed": bool(ran), **facts}
    if module._diff and ran:
        header = "thinjail plan" if module.check_mode else "thinjail ran"
        lines = plan if module.check_mode else ran
        result["diff"] = {"prepared": "\n".join([f"{header} ({params['config']}):", *lines])}
    if failed or rc != 0:
        task, message = failed[0] if failed else ("", (err.strip() or "doit failed")
                                                  .splitlines()[-1])
        module.fail_json(msg=f"{task}: {message}" if task else message, task=task, rc=rc,
                         **result)
    if not module.check_mode:
        # A run of its own: the jails as they are now, not as the graph saw them at its start.
        rc, out, err = module.run_command([*run, "status", f"config={params['config']}",
                                           "format=json"])
        try:
            jails = json.loads(json.loads(out)["tasks"][0]["out"])
        except (ValueError, KeyError, IndexError):
            module.fail_json(msg=f"status: {last_lines(err, out, rc=rc)}", **result)
        result["jails"] = jails
        result["ansible_facts"] = {"thinjail_jails": jails}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
