"""Ansible callback for the fleet tests: every host's result of every task as one JSON line in
$THINJAIL_ANSIBLE_RECORD (host, task, status ok/changed/failed/skipped, msg, ran,
warnings, and the module's jails, diff, attempts and doit_version; censored when no_log hid
the result)."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record"
    CALLBACK_NEEDS_ENABLED = True

    def _record(self, result: Any, status: str) -> None:
        data = result._result
        if status == "ok" and data.get("changed"):
            status = "changed"
        entry = {"host": result._host.get_name(), "task": result._task.get_name(),
                 "status": status, "msg": data.get("msg"), "ran": data.get("ran"),
                 "warnings": data.get("warnings", []), "jails": data.get("jails"),
                 "diff": data.get("diff"), "attempts": data.get("attempts"),
                 "doit_version": data.get("doit_version"), "censored": "censored" in data}
        with open(os.environ["THINJAIL_ANSIBLE_RECORD"], "a") as f:
            f.write(json.dumps(entry) + "\n")

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, "ok")

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._record(result, "unreachable")
