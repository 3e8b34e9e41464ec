"""A local pkgbase repository of synthetic FreeBSD-* packages, in the layout the fake pkg
reads (tests/fakes/_pkgbase.py), with the files of tests/support/freebsd_base.py: what a jail
template needs, split into packages as FreeBSD's base packages are. Signed with a test key
whose fingerprint is in a keys directory like /usr/share/keys/pkgbase-<major>."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.support.freebsd_base import CERTS, FILES, FREEBSD_VERSION

KEY = "-----BEGIN PUBLIC KEY----- the pkgbase test key\n"
OTHER_KEY = "-----BEGIN PUBLIC KEY----- someone else's key\n"
DIRS = ("dev", "etc", "root", "tmp", "var", "var/db", "var/log", "var/empty", "usr/local",
        "usr/local/etc")
ZONEINFO = {"usr/share/zoneinfo/UTC", "usr/share/zoneinfo/Asia/Shanghai"}


def version(release: str, level: int) -> str:
    number = release.split("-", 1)[0]
    return f"{number}p{level}" if level else number


def base_packages(release: str, level: int = 0,
                  changed: dict[str, str] | None = None) -> dict[str, dict]:
    """The base packages of `release` at patch `level`; `changed` files (path: text) are the
    level's changes, in the package that holds each path (FreeBSD-runtime for new ones)."""
    v = version(release, level)
    userland = f"{release}-p{level}" if level else release
    runtime = {path: text for path, text in FILES.items()
               if path not in ZONEINFO and path != "usr/sbin/certctl"}
    runtime |= {"bin/freebsd-version": FREEBSD_VERSION.format(release=userland),
                "lib/libc.so.7": "ELF libc\n"}
    packages = {
        "FreeBSD-runtime": {"files": runtime, "dirs": list(DIRS)},
        "FreeBSD-zoneinfo": {"files": {path: FILES[path] for path in ZONEINFO}},
        "FreeBSD-certctl": {"files": {"usr/sbin/certctl": FILES["usr/sbin/certctl"]}},
        "FreeBSD-caroot": {"files": {f"usr/share/certs/trusted/{cert}.pem":
                                     f"-----BEGIN CERTIFICATE----- {cert}\n" for cert in CERTS}},
    }
    for path, text in (changed or {}).items():
        holder = next((name for name, package in packages.items()
                       if path in package["files"]), "FreeBSD-runtime")
        packages[holder]["files"][path] = text
    for name, package in packages.items():
        package.update(version=v, comment=f"{name} of {release}", deps=[])
    for name, extra in (("FreeBSD-set-minimal-jail", []), ("FreeBSD-set-base-jail", [])):
        packages[name] = {"version": v, "comment": "a set of base packages", "files": {},
                          "deps": [*(n for n in packages if not n.startswith("FreeBSD-set")),
                                   *extra]}
    return packages


def publish(mirror: Path, release: str, packages: dict[str, dict],
            key: str | None = KEY, arch: str = "amd64") -> Path:
    """Write the release's repository under `mirror` (what pkgbase_mirror names: file://
    <mirror>/FreeBSD:<major>:<arch>/base_release_<minor>), signed with `key` (None:
    unsigned); return its directory."""
    number = release.split("-", 1)[0]
    major, minor = number.split(".")
    repo = mirror / f"FreeBSD:{major}:{arch}" / f"base_release_{minor}"
    repo.mkdir(parents=True, exist_ok=True)
    site = json.dumps({"packages": packages}, indent=1, sort_keys=True).encode()
    (repo / "packagesite.json").write_bytes(site)
    signature = repo / "signature.json"
    if key is None:
        signature.unlink(missing_ok=True)
    else:
        signature.write_text(json.dumps({
            "cert": key, "sig": hashlib.sha256(key.encode() + site).hexdigest()}))
    return repo


def keys_dir(path: Path, key: str = KEY) -> Path:
    """A fingerprints directory as /usr/share/keys/pkgbase-<major> is: trusted/ and
    revoked/, one UCL file per key."""
    (path / "trusted").mkdir(parents=True, exist_ok=True)
    (path / "revoked").mkdir(exist_ok=True)
    (path / "trusted" / "pkgbase.test").write_text(
        f'function: "sha256"\nfingerprint: "{hashlib.sha256(key.encode()).hexdigest()}"\n')
    return path
