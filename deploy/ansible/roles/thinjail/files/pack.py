"""Pack what a jail host needs of thinjail (dodo.py, tasks/, templates/) into one archive.

Runs on the Ansible controller. The archive is byte-for-byte the same for the same sources
(sorted members, no times, no owners), so copying it to a host is a no-op until thinjail
itself changes. Usage: pack.py SOURCE_DIR ARCHIVE
"""

from __future__ import annotations

import gzip
import io
import sys
import tarfile
from pathlib import Path

MEMBERS = ("dodo.py", "tasks", "templates")
SUFFIXES = {".py", ".j2"}


def files(source: Path) -> list[Path]:
    found = []
    for member in MEMBERS:
        path = source / member
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += [p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES
                      and "__pycache__" not in p.parts]
        else:
            sys.exit(f"pack.py: {path} is missing: is {source} a thinjail checkout?")
    return sorted(found)


def pack(source: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files(source):
            info = tarfile.TarInfo(str(path.relative_to(source)))
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def main() -> None:
    source, archive = Path(sys.argv[1]), Path(sys.argv[2])
    data = pack(source)
    if not archive.exists() or archive.read_bytes() != data:
        archive.write_bytes(data)


if __name__ == "__main__":
    main()
