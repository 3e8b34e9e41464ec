"""The fake pkg(8) on the host: the official repository's catalogue, its local copy, and the
host's installed packages, for the commands `pkg install`, community.general.pkgng and
ansible.builtin.package_facts run.

- `pkg -v` prints pkg's version.
- With LOCALBASE set the host is a fresh one (tests/fakes/pkg: pkg(7) bootstraps first), and
  installing lang/python3 puts its `python3` at $LOCALBASE/bin/python3: a script running
  the Python named by THINJAIL_FAKE_PYTHON.
- `pkg update` fetches the catalogue (state file `catalogue`). The number in the state file
  `pkg-update-failures` is how many fetches fail first, as an unreachable mirror fails:
  "pkg: <url>: Connection refused" on stderr, "Unable to update repository FreeBSD" and
  "Error updating repositories!" on stdout, exit 70 (freebsd/pkg tests/frontend/update.sh
  `update_error`; src/update.c).
- `pkg install [-g] [-U] -y <name or origin> ...`: without -U the catalogue is fetched first
  (REPO_AUTOUPDATE, on by default), as `pkg update` does, and a failed fetch stops it; with
  -U and no catalogue, "Repository FreeBSD missing. 'pkg update' required", exit 1.
- `pkg info [-g] -e <pattern> ...`: exit 0 when every pattern matches an installed package,
  1 otherwise, printing nothing (pkg-info(8) -e).
- `pkg query <format> [<pattern> ...]`: one line per installed package with %n %v %R %t %a
  %q %o %p %V substituted; no pattern means every package (pkg-query(8)).

A pattern with a '/' matches the origin (pkg-install(8)); -g makes it a shell glob. Packages
are built for the ports tree's default Python only, 3.12 (Mk/bsd.default-versions.mk,
PYTHON_DEFAULT), so `py312-doit` exists and `py311-doit` does not.
"""

from __future__ import annotations

import fnmatch
import os
import sys
from pathlib import Path

import _fake

TOOL = "pkg"
VERSION = "2.4.2"
REPOSITORY = "FreeBSD"
DEFAULT_FLAVOUR = "py312"
# package name -> (origin, version): what the catalogue offers.
CATALOGUE = {
    "pkg": ("ports-mgmt/pkg", VERSION),
    f"{DEFAULT_FLAVOUR}-doit": ("devel/py-doit", "0.36.0"),
    f"{DEFAULT_FLAVOUR}-pyyaml": ("devel/py-pyyaml", "6.0.1_1"),
    f"{DEFAULT_FLAVOUR}-Jinja2": ("devel/py-Jinja2", "3.1.6"),
    f"{DEFAULT_FLAVOUR}-tqdm": ("misc/py-tqdm", "4.67.1"),
    "python3": ("lang/python3", "3_4"),
    "python312": ("lang/python312", "3.12.12"),
}


def matches(package: str, pattern: str, glob: bool) -> bool:
    """Whether an installed or offered package matches a name or origin pattern."""
    origin = CATALOGUE[package][0]
    if "/" in pattern:
        subject, (pattern, _, flavour) = origin, pattern.partition("@")
        if flavour not in ("", DEFAULT_FLAVOUR):
            return False
    else:
        subject = package
    return fnmatch.fnmatchcase(subject, pattern) if glob else subject == pattern


def installed_file() -> Path:
    return _fake.state_dir() / "packages" / "host"


def installed() -> list[str]:
    """The host's packages: pkg itself (the host is bootstrapped, pkg(7)), then what was
    installed (the state file lists those)."""
    path = installed_file()
    return ["pkg", *(path.read_text().split() if path.exists() else [])]


def localbase() -> Path | None:
    """A fresh host's /usr/local, as pkg(7) takes it from LOCALBASE: pkg(8) is installed at
    sbin/pkg, lang/python3's python3 at bin/python3. Unset: the host has pkg(8) already."""
    value = os.environ.get("LOCALBASE")
    return Path(value) if value else None


def mirror_fails() -> bool:
    """One fetch from the mirror, failing while the state file `pkg-update-failures` counts
    fetches left to fail."""
    failures = _fake.state_dir() / "pkg-update-failures"
    with _fake.locked():
        left = int(failures.read_text()) if failures.exists() else 0
        if left > 0:
            failures.write_text(str(left - 1))
    return left > 0


def update() -> int:
    """Fetch the catalogue, or fail as an unreachable mirror does."""
    print(f"Updating {REPOSITORY} repository catalogue...")
    if mirror_fails():
        print(f"pkg: https://pkg.FreeBSD.org/FreeBSD:{_fake.freebsd_major()}:amd64/quarterly/"
              "meta.conf: Connection refused", file=sys.stderr)
        print(f"Unable to update repository {REPOSITORY}\nError updating repositories!")
        return 70
    (_fake.state_dir() / "catalogue").write_text("\n".join(CATALOGUE) + "\n")
    print(f"{REPOSITORY} repository is up to date.\nAll repositories are up to date.")
    return 0


def flags(args: list[str], allowed: str) -> tuple[set[str], list[str]]:
    """Single-letter flags (possibly bundled, as `-gUy`) before the first operand."""
    seen: set[str] = set()
    while args and args[0].startswith("-") and len(args[0]) > 1:
        for letter in args.pop(0)[1:]:
            if letter not in allowed:
                _fake.fail(TOOL, f"illegal option -- {letter}", 64)
            seen.add(letter)
    return seen, args


def install(args: list[str]) -> int:
    opts, wanted = flags(args, "gUyqAfn")
    if "y" not in opts or not wanted:
        _fake.fail(TOOL, "usage (fake): pkg install [-g] [-U] -y <pkg-name> ...", 64)
    if "U" not in opts:
        if (code := update()) != 0:
            return code
    elif not (_fake.state_dir() / "catalogue").exists():
        print(f"Repository {REPOSITORY} missing. 'pkg update' required", file=sys.stderr)
        return 1
    packages = []
    for pattern in wanted:
        found = [p for p in CATALOGUE if matches(p, pattern, "g" in opts)]
        if not found:
            _fake.fail(TOOL, f"No packages available to install matching '{pattern}' have "
                       "been found in the repositories", 1)
        packages += found
    with _fake.locked():
        have = set(installed())
        new = sorted(set(packages) - have)
        if not new:
            print("The most recent versions of packages are already installed")
            return 0
        print(f"The following {len(new)} package(s) will be affected (of 0 checked):\n\n"
              "New packages to be INSTALLED:")
        for package in new:
            print(f"\t{package}: {CATALOGUE[package][1]} [{REPOSITORY}]")
        installed_file().parent.mkdir(parents=True, exist_ok=True)
        installed_file().write_text("\n".join(sorted((have | set(new)) - {"pkg"})) + "\n")
        if "python3" in new and (base := localbase()) is not None:
            install_python(base / "bin/python3")
    return 0


def install_python(path: Path) -> None:
    """lang/python3's python3: the Python named by THINJAIL_FAKE_PYTHON stands for it."""
    python = os.environ.get("THINJAIL_FAKE_PYTHON")
    if not python:
        _fake.fail(TOOL, "fake: installing lang/python3 below LOCALBASE needs "
                   "THINJAIL_FAKE_PYTHON", 70)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {python} "$@"\n')
    path.chmod(0o755)


def info(args: list[str]) -> int:
    opts, patterns = flags(args, "ge")
    if "e" not in opts or not patterns:
        _fake.fail(TOOL, "usage (fake): pkg info [-g] -e <pkg-name> ...", 64)
    have = installed()
    found = all(any(matches(p, pattern, "g" in opts) for p in have) for pattern in patterns)
    return 0 if found else 1


def query(args: list[str]) -> int:
    if not args:
        _fake.fail(TOOL, "usage: pkg query <query-format> <pkg-name>", 64)
    fmt, patterns = args[0], args[1:]
    abi = f"FreeBSD:{_fake.freebsd_major()}:amd64"
    for package in installed():
        if patterns and not any(matches(package, p, False) for p in patterns):
            continue
        origin, version = CATALOGUE[package]
        fields = {"n": package, "v": version, "R": REPOSITORY, "t": "1764460800", "a": "0",
                  "q": abi, "o": origin, "p": "/usr/local", "V": "0"}
        line = fmt
        for key, value in fields.items():
            line = line.replace(f"%{key}", value)
        print(line.replace("\\t", "\t"))
    return 0


def run(args: list[str]) -> int:
    commands = {"update": lambda rest: update(), "install": install, "info": info,
                "query": query}
    if not args or args[0] not in commands:
        _fake.fail(TOOL, f"not modelled on the host (fake): pkg {' '.join(args)}", 64)
    return commands[args[0]](args[1:])
