"""Pack what a jail host needs of thinjail (dodo.py, tasks/, templates/) into one archive.

Runs on the Ansible controller. The archive is byte-for-byte the same for the same sources
(sorted members, no times, no owners), so copying it to a host is a no-op until thinjail
itself changes. It is stored by its checksum, as DIR/thinjail-<sha1>.tar.gz, written to a
temporary file beside it and renamed into place: hosts packing at once (strategy: free)
write the same bytes to one path, and none ever sees a half-written archive or removes one
another host is about to copy. Prints {"archive": path, "sha1": checksum}.
Usage: pack.py SOURCE_DIR DIR
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import tempfile
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
            sys.exit(f"pack.py: {source} is not a thinjail checkout ({path} is missing): set "
                     "thinjail_source to the checkout on the controller that the hosts get")
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


def store(data: bytes, sha1: str, directory: Path) -> Path:
    """The archive's path in directory, written once per checksum."""
    archive = directory / f"thinjail-{sha1}.tar.gz"
    if not archive.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd, scratch = tempfile.mkstemp(dir=directory, prefix=".pack-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.chmod(scratch, 0o644)
            os.replace(scratch, archive)
        except BaseException:
            os.unlink(scratch)
            raise
    return archive


def main() -> None:
    data = pack(Path(sys.argv[1]))
    sha1 = hashlib.sha1(data).hexdigest()
    print(json.dumps({"archive": str(store(data, sha1, Path(sys.argv[2]))), "sha1": sha1}))


if __name__ == "__main__":
    main()
