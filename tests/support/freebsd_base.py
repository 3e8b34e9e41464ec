"""A small base.txz with FreeBSD's layout and what the pipeline must get right: relative
cert links, an absolute link, a hard link, var/empty with the `schg` flag,
bin/freebsd-version, zoneinfo, an empty dev/ for devfs, and the programs a VNET jail's
exec.start runs inside it (sbin/ifconfig, route, dhclient; the fake jail(8) looks for them).
Built with bsdtar from an mtree spec, as FreeBSD's release tooling does, plus its MANIFEST
line."""

from __future__ import annotations

import hashlib
import random
import subprocess
from pathlib import Path

CERTS = ("ISRG_Root_X1", "DigiCert_Global_Root_G2")
CERT_HASHES = {"ISRG_Root_X1": "4042bcee.0", "DigiCert_Global_Root_G2": "607986c7.0"}
FREEBSD_VERSION = """#!/bin/sh
# fake freebsd-version with the real script's variable lines
USERLAND_VERSION="{release}"
: ${{ROOT:=}}
echo $USERLAND_VERSION
"""

FILES = {
    "bin/sh": "#!/bin/sh\n",
    "etc/rc": "# /etc/rc\n",
    "etc/rc.shutdown": "# /etc/rc.shutdown\n",
    "etc/passwd": "root:*:0:0:Charlie &:/root:/bin/sh\n",
    "etc/group": "wheel:*:0:root\n",
    "etc/freebsd-update.conf": "KeyPrint 800651ef4b4c71c2\nServerName update.FreeBSD.org\n",
    "etc/ssl/cert.pem": "-----BEGIN CERTIFICATE----- the trust store's bundle\n",
    "etc/login.conf": ("default:\\\n\t:passwd_format=sha512:\\\n\t:umask=022:\n\n"
                       "daemon:\\\n\t:tc=default:\n\nroot:\\\n\t:ignorenologin:\\\n"
                       "\t:tc=default:\n"),
    "root/.cshrc": "# root's cshrc\n",
    "usr/share/zoneinfo/UTC": "TZif2 UTC\n",
    "usr/share/zoneinfo/Asia/Shanghai": "TZif2 CST-8\n",
    "usr/share/misc/termcap": "# termcap\n",
    "libexec/ld-elf.so.1": "ELF\n",
    "sbin/ifconfig": "ELF ifconfig\n",
    "sbin/route": "ELF route\n",
    "sbin/dhclient": "ELF dhclient\n",
    "usr/sbin/certctl": "ELF certctl\n",
    "usr/bin/uname": "ELF uname\n",
    "usr/sbin/pkg": "ELF pkg(7), the bootstrap\n",
}
LIBC_SIZE = 256 * 1024  # incompressible, so downloads can be cut and resumed mid-way
DIRS = ("bin", "sbin", "dev", "lib", "etc", "etc/ssl", "etc/ssl/certs", "root", "tmp", "var",
        "var/db", "var/db/freebsd-update", "var/log", "usr", "usr/share", "usr/share/certs",
        "usr/share/certs/trusted", "usr/share/zoneinfo", "usr/share/zoneinfo/Asia",
        "usr/share/misc", "usr/sbin", "usr/bin", "libexec", "usr/local", "usr/local/etc")


def build_base_txz(work: Path, release: str,
                   links: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write base.txz and MANIFEST into work; return their paths. `links` replaces paths
    (and what is below them) by symlinks: {"var/db": "/somewhere/on/the/host"}."""
    links = links or {}

    def kept(rel: str) -> bool:
        return not any(rel == link or rel.startswith(f"{link}/") for link in links)

    src = work / "src"
    dirs = [d for d in DIRS if kept(d)]
    for d in dirs:
        (src / d).mkdir(parents=True, exist_ok=True)
    files = dict(FILES)
    files["bin/freebsd-version"] = FREEBSD_VERSION.format(release=release)
    for cert in CERTS:
        files[f"usr/share/certs/trusted/{cert}.pem"] = f"-----BEGIN CERTIFICATE----- {cert}\n"
    files = {rel: text for rel, text in files.items() if kept(rel)}
    for rel, text in files.items():
        (src / rel).write_text(text)
    (src / "lib/libc.so.7").write_bytes(random.Random(release).randbytes(LIBC_SIZE))
    lines = ["#mtree"]
    for d in dirs:
        mode = "1777" if d == "tmp" else "0755"
        lines.append(f"./{d} type=dir uname=root gname=wheel mode={mode}")
    if kept("var/empty"):
        lines.append("./var/empty type=dir uname=root gname=wheel mode=0555 flags=schg")
    for rel in files:
        mode = "0555" if rel.startswith(("bin/", "sbin/", "libexec/")) else "0644"
        lines.append(f"./{rel} type=file uname=root gname=wheel mode={mode} contents={rel}")
    lines.append("./lib/libc.so.7 type=file uname=root gname=wheel mode=0444 "
                 "contents=lib/libc.so.7")
    for cert in CERTS:  # certctl's relative links (14.x before hard links)
        if kept(f"etc/ssl/certs/{CERT_HASHES[cert]}"):
            lines.append(f"./etc/ssl/certs/{CERT_HASHES[cert]} type=link uname=root gname=wheel "
                         f"mode=0644 link=../../../usr/share/certs/trusted/{cert}.pem")
    standard = {"etc/termcap": "/usr/share/misc/termcap",
                "etc/rc.conf.sample": "rc"}  # absolute, and relative in the same directory
    for rel, target in ({k: v for k, v in standard.items() if kept(k)} | links).items():
        lines.append(f"./{rel} type=link mode=0644 link={target}")
    spec = work / "base.mtree"
    spec.write_text("\n".join(lines) + "\n")
    archive = work / "base.txz"
    subprocess.run(["bsdtar", "-c", "-J", "-f", str(archive), "-C", str(src), f"@{spec}"],
                   check=True)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = work / "MANIFEST"
    manifest.write_text(
        f"base-dbg.txz\t{'0' * 64}\t10\tbase_dbg\t\"Base system (Debugging)\"\toff\n"
        f"base.txz\t{sha}\t{len(files) + len(dirs)}\tbase\t\"Base system (MANDATORY)\"\ton\n")
    return archive, manifest
