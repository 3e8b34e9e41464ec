"""pkg(8) on a tree (`--rootdir`), as pkgbase uses it: the fake pkg's repositories, their
signatures, and the package database inside the tree.

Repositories come only from `--repo-conf-dir` (the fake refuses the host's own, which
thinjail must never rely on). A conf file holds UCL blocks `Name: { url: "...",
signature_type: "fingerprints", fingerprints: "<dir>", enabled: yes }`; `${ABI}` in the url
is the ABI given with `-o ABI=` (with --rootdir and no ABI, pkg cannot tell it: the tree
has no /usr/bin/uname yet). Only file:// repositories are modelled.

A repository directory holds `packagesite.json` ({"packages": {name: {"version", "comment",
"deps", "dirs": [path], "files": {path: text}}}}) and, when signed, `signature.json`
({"cert": text, "sig": sha256 of cert + packagesite}). With `signature_type:
"fingerprints"` the checks and messages are libpkg's
(pkg_repo_archive_extract_check_archive): no signature -> "No signature found"; no
<fingerprints>/trusted directory -> "Error loading trusted certificates"; none in it ->
"No trusted certificates"; a cert listed under revoked/ -> "At least one of the certificates
has been revoked"; a cert not listed -> "No trusted certificate found"; a signature that does
not match -> "No trusted certificate has been used to sign the repository". Each then fails
the update of the catalogue: "Unable to update repository <name>", "Error updating
repositories!", exit 3 (EPKG_FATAL, which exec_install returns as the exit code). A missing
signature_type is "none": nothing is checked.

The database is `<PKG_DBDIR>/local.json`. As in libpkg's pkg_ini, only the built-in
defaults are prefixed with the root (`<rootdir>/var/db/pkg`); a PKG_DBDIR or PKG_CACHEDIR
given with -o is a path on the host, used as it is (so it must be absolute). The database is
reached as the host sees it, links followed. `install -y` adds the named packages and
their dependencies and writes their files below the root; `upgrade -n` lists what would
change and exits 1 when something would (0 and "Your packages are up to date." otherwise,
as src/upgrade.c does); `upgrade -y` installs it; `info` lists what is installed; `query %v
<name>` prints a version. The repository's catalogue is kept in <PKG_DBDIR>/repos/ and
fetched anew by install and upgrade; they need a writable database ("Insufficient privilege
to upgrade packages", exit 1), except a dry run, which then uses the catalogue it has
("Repository <name> missing. 'pkg update' required" without one), as src/upgrade.c does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from pathlib import Path

EPKG_FATAL = 3
BLOCK_RE = re.compile(r"^([A-Za-z0-9_-]+)\s*:\s*\{(.*?)^\}", re.DOTALL | re.MULTILINE)
FIELD_RE = re.compile(r"([A-Za-z_]+)\s*:\s*\"?([^\",\n]*)\"?")


class Failed(Exception):
    def __init__(self, code: int, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.code = code


def fingerprints(directory: Path) -> set[str]:
    found = set()
    for entry in directory.iterdir():
        text = entry.read_text()
        function = re.search(r'function\s*:\s*"([^"]+)"', text)
        value = re.search(r'fingerprint\s*:\s*"([0-9a-f]+)"', text)
        if function and value and function.group(1).lower() == "sha256":
            found.add(value.group(1))
    return found


def check_signature(name: str, repo: Path, conf: dict[str, str]) -> None:
    if conf.get("signature_type", "none").lower() != "fingerprints":
        return
    problem = None
    signature_file = repo / "signature.json"
    keys = Path(conf.get("fingerprints", ""))
    if not signature_file.exists():
        problem = "No signature found"
    elif not (keys / "trusted").is_dir():
        problem = "Error loading trusted certificates"
    else:
        signature = json.loads(signature_file.read_text())
        cert_hash = hashlib.sha256(signature["cert"].encode()).hexdigest()
        trusted = fingerprints(keys / "trusted")
        revoked = fingerprints(keys / "revoked") if (keys / "revoked").is_dir() else set()
        expected = hashlib.sha256(signature["cert"].encode()
                                  + (repo / "packagesite.json").read_bytes()).hexdigest()
        if not trusted:
            problem = "No trusted certificates"
        elif cert_hash in revoked:
            problem = "At least one of the  certificates has been revoked"
        elif cert_hash not in trusted:
            problem = "No trusted certificate found"
        elif signature["sig"] != expected:
            problem = "No trusted certificate has been used to sign the repository"
    if problem:
        raise Failed(EPKG_FATAL, f"pkg: {problem}", f"pkg: Unable to update repository {name}",
                     "Error updating repositories!")


def load_repos(conf_dir: Path | None, abi: str, dbdir: Path,
               update: bool) -> dict[str, dict]:
    """Every enabled repository's packages. With `update` its catalogue is fetched, checked
    as pkg checks it and kept in <dbdir>/repos/; without, the kept one is used."""
    if conf_dir is None:
        raise Failed(70, "fake pkg: --rootdir without --repo-conf-dir would use the host's "
                         "own repositories (/etc/pkg, /usr/local/etc/pkg/repos): not modelled")
    packages: dict[str, dict] = {}
    for conf_file in sorted(conf_dir.glob("*.conf")):
        for name, body in BLOCK_RE.findall(conf_file.read_text()):
            conf = {key: value.strip() for key, value in FIELD_RE.findall(body)}
            if conf.get("enabled", "yes").lower() in ("no", "false"):
                continue
            url = conf.get("url", "").replace("${ABI}", abi)
            if not url.startswith("file://"):
                raise Failed(70, f"fake pkg: {url}: only file:// repositories are modelled")
            catalogue = dbdir / "repos" / f"{name}.json"
            if not update:
                if not catalogue.is_file():
                    raise Failed(1, f"pkg: Repository {name} missing. 'pkg update' required")
                packages.update(json.loads(catalogue.read_text())["packages"])
                continue
            repo = Path(url.removeprefix("file://"))
            if not (repo / "packagesite.json").is_file():
                raise Failed(EPKG_FATAL, f"pkg: {url}/meta.conf: No such file or directory",
                             f"pkg: Unable to update repository {name}",
                             "Error updating repositories!")
            check_signature(name, repo, conf)
            catalogue.parent.mkdir(parents=True, exist_ok=True)
            catalogue.write_bytes((repo / "packagesite.json").read_bytes())
            packages.update(json.loads(catalogue.read_text())["packages"])
    return packages


def nearest_existing(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def closure(packages: dict[str, dict], names: list[str]) -> list[str]:
    wanted: list[str] = []
    pending = list(names)
    while pending:
        name = pending.pop(0)
        if name in wanted:
            continue
        if name not in packages:
            raise Failed(1, f"pkg: No packages available to install matching '{name}' have "
                            "been found in the repositories")
        wanted.append(name)
        pending += packages[name].get("deps", [])
    return wanted


def write_files(root: Path, package: dict) -> None:
    for directory in package.get("dirs", []):
        (root / directory).mkdir(parents=True, exist_ok=True)
    for path, text in package.get("files", {}).items():
        target = root / path  # as the host sees the tree: links followed
        target.parent.mkdir(parents=True, exist_ok=True)
        staged = target.with_name(f".pkgtemp.{target.name}")
        staged.write_text(text)
        staged.replace(target)


def run(root: Path, conf_dir: Path | None, options: dict[str, str], args: list[str]) -> int:
    try:
        return _run(root, conf_dir, options, args)
    except Failed as failure:
        print(str(failure), file=sys.stderr)
        return failure.code


def _run(root: Path, conf_dir: Path | None, options: dict[str, str], args: list[str]) -> int:
    if not root.is_dir():
        raise Failed(1, f"pkg: Unable to open rootdir {root}: No such file or directory")
    for key in ("PKG_DBDIR", "PKG_CACHEDIR"):
        if key in options and not options[key].startswith("/"):
            raise Failed(1, f"pkg: Invalid value for config option {key}, "
                            f"'{options[key]}' is not an absolute path.")
    db = Path(options.get("PKG_DBDIR", f"{root}/var/db/pkg")) / "local.json"
    installed: dict[str, str] = json.loads(db.read_text()) if db.is_file() else {}
    command, rest = (args[0], args[1:]) if args else ("", [])
    if command == "info":
        for name in sorted(n for n in installed if not rest or n in rest):
            print(f"{name}-{installed[name]}")
        return 0
    if command == "query" and len(rest) == 2 and rest[0] == "%v":
        if rest[1] not in installed:
            return 1
        print(installed[rest[1]])
        return 0
    if command not in ("install", "upgrade"):
        raise Failed(70, f"fake pkg: {' '.join(args)}: not modelled")
    abi = options.get("ABI")
    if abi is None and not (root / "usr/bin/uname").is_file():
        raise Failed(1, "pkg: Unable to determine ABI")
    flags = [a for a in rest if a.startswith("-")]
    names = [a for a in rest if not a.startswith("-")]
    # src/upgrade.c, install.c: the database must be writable, except for a dry run, which
    # then does without updating the catalogue (it uses the one it has).
    dbdir = db.parent
    writable = os.access(dbdir if dbdir.exists() else nearest_existing(dbdir), os.W_OK)
    if not writable and "-n" not in flags:
        raise Failed(1, f"pkg: Insufficient privilege to {command} packages")
    packages = load_repos(conf_dir, abi or "", dbdir, update=writable)
    if command == "install":
        if flags != ["-y"] or not names:
            raise Failed(64, "usage (fake): pkg ... install -y <pkg-name> ...")
        chosen = [n for n in closure(packages, names)
                  if installed.get(n) != packages[n]["version"]]
    else:
        if flags not in (["-y"], ["-n"]) or names:
            raise Failed(64, "usage (fake): pkg ... upgrade -y|-n")
        chosen = [n for n in sorted(installed)
                  if n in packages and packages[n]["version"] != installed[n]]
    if command == "upgrade":
        if not chosen:
            print("Your packages are up to date.")
            return 0
        print(f"The following {len(chosen)} package(s) will be affected (of 0 checked):\n\n"
              "Installed packages to be UPGRADED:")
        for name in chosen:
            print(f"\t{name}: {installed[name]} -> {packages[name]['version']}")
        print(f"\nNumber of packages to be upgraded: {len(chosen)}")
        if flags == ["-n"]:
            return 1  # dry run: something would be done
    for name in chosen:
        write_files(root, packages[name])
        installed[name] = packages[name]["version"]
        print(f"[{root.name}] Installing {name}-{packages[name]['version']}...")
    db.parent.mkdir(parents=True, exist_ok=True)
    db.write_text(json.dumps(installed, indent=1, sort_keys=True))
    return 0
