"""The Ansible module's documentation is what ansible-doc reads, and says what the module
takes and returns (the check validate-modules makes of argument_spec against DOCUMENTATION)."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.support.collection import COLLECTION, collections_path
from tests.support.host import REPO

LIBRARY = REPO / "deploy" / "ansible" / "plugins" / "modules"
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
    assert examples and all("thinjail.jails.thinjail_doit" in task for task in examples)
    for task in examples:
        assert set(task["thinjail.jails.thinjail_doit"]) <= set(spec)


def test_the_collection_installs_from_git(tmp_path: Path) -> None:
    """`ansible-galaxy collection install` takes the collection from a git repository's
    deploy/ansible/ directory (a repository made here of the working tree's collection, so
    the test does not depend on what is committed); the installed module documents itself."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "ANSIBLE_HOME": str(tmp_path / "home")}
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "deploy" / "ansible", repo / "deploy" / "ansible",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "collection"]):
        subprocess.run([*git, *argv], check=True, capture_output=True)
    installed = subprocess.run(
        [str(bin_dir / "ansible-galaxy"), "collection", "install", "-p",
         str(tmp_path / "collections"), f"git+file://{repo}#/deploy/ansible/,HEAD"],
        capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    installed = tmp_path / "collections" / "ansible_collections" / "thinjail" / "jails"
    assert (installed / "roles/thinjail/meta/argument_specs.yml").is_file()
    assert (installed / "meta/runtime.yml").is_file()
    doc = subprocess.run([str(bin_dir / "ansible-doc"), "-j", "thinjail.jails.thinjail_doit"],
                         check=True, capture_output=True, text=True,
                         env={**env, "ANSIBLE_COLLECTIONS_PATH": str(tmp_path / "collections")})
    assert "options" in json.loads(doc.stdout)["thinjail.jails.thinjail_doit"]["doc"]


def test_the_collection_passes_ansible_lint_production(tmp_path: Path) -> None:
    """ansible-lint --profile production (deploy/ansible/.ansible-lint names the two Galaxy
    publication keys it skips) finds nothing."""
    lint = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-lint")), "--nocolor", "-q"],
        cwd=COLLECTION, capture_output=True, text=True, timeout=600,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "home"),
             "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path))})
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_collection_passes_ansible_test_sanity(tmp_path: Path) -> None:
    """`ansible-test sanity` (every test it has for this collection, each in its own venv of
    pinned requirements from PyPI) finds nothing; tests/sanity/ignore-*.txt names the one
    check skipped, the GPLv3 header, with its reason."""
    tree = tmp_path / "ansible_collections" / "thinjail" / "jails"
    shutil.copytree(COLLECTION, tree, ignore=shutil.ignore_patterns("__pycache__"))
    home = tmp_path / "home"
    source = (Path(sys.executable).parent.parent / "lib").glob(
        "python3*/site-packages/ansible_test/_internal/python_requirements.py")
    pip = re.search(r"pip='([0-9.]+)'", next(source).read_text()).group(1)
    cache = home / ".ansible" / "test" / "cache" / f"get_pip_{pip.replace('.', '_')}.py"
    cache.parent.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "support" / "get_pip.py", cache)
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    sanity = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-test")), "sanity", "--local", "--python",
         python, "--color", "no"], cwd=tree, capture_output=True, text=True, timeout=900,
        env={**os.environ, "HOME": str(home)})
    assert sanity.returncode == 0, sanity.stdout[-5000:] + sanity.stderr[-5000:]
    assert 'Running sanity test "validate-modules"' in sanity.stdout


def load_module() -> Any:
    spec = importlib.util.spec_from_file_location("thinjail_doit", MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_module_takes_doit_0_36_and_0_37_only(tmp_path: Path) -> None:
    module = load_module()
    assert module.doit_version("0.37.0\nlib @ /usr/local/lib/python3.11/site-packages/doit") \
        == (0, 37, 0)
    assert module.doit_version("") is None and module.doit_version("doit?") is None
    assert [module.supported(v) for v in ((0, 35, 9), (0, 36, 0), (0, 37, 2), (0, 38, 0))] \
        == [False, True, True, False]
    # An interpreter without doit: the module says so before it runs anything.
    config = tmp_path / "config.yaml"
    config.write_text("{}\n")
    run = subprocess.run(
        [str(Path(sys.executable).with_name("ansible")), "localhost", "-m",
         "thinjail.jails.thinjail_doit", "-a",
         json.dumps({"project": str(REPO), "config": str(config), "python": "/usr/bin/python3"})],
        capture_output=True, text=True,
        env={**os.environ, "ANSIBLE_HOME": str(tmp_path / "home"),
             "ANSIBLE_COLLECTIONS_PATH": str(collections_path(tmp_path))})
    assert run.returncode != 0
    assert "/usr/bin/python3 -m doit: doit /usr/bin/python3: No module named doit; thinjail " \
           "needs doit >=0.36,<0.38" in run.stdout, run.stdout + run.stderr
