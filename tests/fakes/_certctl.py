"""certctl(8) `rehash` as the fakes run it inside a jail (jexec). Which certctl depends on
the tree's own FreeBSD, as the jail runs its base's binary:

- 14.x, the sh script (usr.sbin/certctl/certctl.sh): every link in CERTDESTDIR
  (/etc/ssl/certs) is removed, then each trusted certificate gets a relative link named by
  its subject hash, made with `install -lrs` from the real paths, so the link is relative
  to where /etc/ssl/certs really is (/skeleton/etc/ssl/certs in a thin jail);
- 15.x, the C rewrite (freebsd-src c340ef28, "certctl: Reimplement in C"): each trusted
  certificate is written out as a file (no links), entries no longer trusted are removed,
  and the bundle /etc/ssl/cert.pem is written too.

Trusted: *.pem *.crt *.cer *.crl *.0 under TRUSTPATH, minus those whose name is under
UNTRUSTPATH or /etc/ssl/untrusted. The certificates the tests make have no subject: the
fixture's carry the hash names base.txz links them by, any other is named by a digest of
its text.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from tests.support.freebsd_base import CERT_HASHES

TRUSTPATH = ("/usr/share/certs/trusted", "/usr/local/share/certs", "/usr/local/etc/ssl/certs")
UNTRUSTPATH = ("/usr/share/certs/untrusted", "/usr/local/etc/ssl/untrusted",
               "/etc/ssl/untrusted")
EXTENSIONS = (".pem", ".crt", ".cer", ".crl", ".0")
CERTDESTDIR = "/etc/ssl/certs"
BUNDLE = "/etc/ssl/cert.pem"

# resolve(path in the jail) -> (the path with every link followed, the host path of it)
Resolve = Callable[[str], tuple[str, Path]]


def subject_hash(path: Path) -> str:
    known = CERT_HASHES.get(path.stem)
    return known or hashlib.sha1(path.read_bytes()).hexdigest()[:8] + ".0"


def _listed(resolve: Resolve, directories: tuple[str, ...]) -> dict[str, tuple[str, Path]]:
    found = {}
    for directory in directories:
        real, host = resolve(directory)
        if not host.is_dir():
            continue
        for entry in sorted(host.iterdir()):
            if entry.name.endswith(EXTENSIONS) and entry.is_file():
                found[entry.name] = (f"{real}/{entry.name}", entry)
    return found


def rehash(resolve: Resolve, major: int) -> None:
    untrusted = set(_listed(resolve, UNTRUSTPATH))
    trusted = {name: where for name, where in _listed(resolve, TRUSTPATH).items()
               if name not in untrusted}
    real_dest, dest = resolve(CERTDESTDIR)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {subject_hash(host): (real, host) for real, host in trusted.values()}
    if major <= 14:
        for entry in dest.iterdir():
            if entry.is_symlink():
                entry.unlink()
        for name, (real, _) in wanted.items():
            (dest / name).symlink_to(os.path.relpath(real, real_dest))
        return
    for entry in dest.iterdir():
        if entry.name not in wanted:
            entry.unlink()
    for name, (_, host) in wanted.items():
        target = dest / name
        if target.is_symlink():
            target.unlink()
        target.write_bytes(host.read_bytes())
    _, bundle = resolve(BUNDLE)
    if bundle.is_symlink():
        bundle.unlink()
    bundle.write_bytes(b"".join(host.read_bytes() for _, host in wanted.values()))
