"""The Ansible module's documentation is what ansible-doc reads, and says what the module
takes and returns (the check validate-modules makes of argument_spec against DOCUMENTATION)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.host import REPO

LIBRARY = REPO / "deploy" / "ansible" / "roles" / "thinjail" / "library"
MODULE = LIBRARY / "thinjail_doit.py"


def argument_spec() -> dict:
    """The argument_spec dict literal passed to AnsibleModule in main()."""
    tree = ast.parse(MODULE.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "argument_spec":
            return ast.literal_eval(node.value)
    raise AssertionError("no argument_spec in the module")


def test_ansible_doc_reads_the_module_and_its_options_match_the_code() -> None:
    doc = subprocess.run([str(Path(sys.executable).with_name("ansible-doc")), "-j", "-M",
                          str(LIBRARY), "thinjail_doit"], capture_output=True, text=True,
                         check=True).stdout
    info = json.loads(doc)["thinjail_doit"]
    options = info["doc"]["options"]
    spec = argument_spec()
    assert set(options) == set(spec)
    for name, entry in spec.items():
        assert options[name]["type"] == entry["type"], name
        assert options[name].get("required", False) == entry.get("required", False), name
        assert options[name].get("default") == entry.get("default"), name
    assert {"ran", "reports", "task", "cmd"} <= set(info["return"])
    assert all("returned" in value for value in info["return"].values())
    examples = yaml.safe_load(info["examples"])
    assert examples and all("thinjail_doit" in task for task in examples)
    for task in examples:
        assert set(task["thinjail_doit"]) <= set(spec)
