"""doit's JSON backend saved atomically (temporary file, fsync, rename): the alternative to
SQLite that bench/state_backend.py measures. Registered as a doit plugin there only."""

from __future__ import annotations

import os
import tempfile

from doit.dependency import JsonDB


class AtomicJsonDB(JsonDB):  # type: ignore[misc]
    def dump(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.name))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".doit-db.")
        with os.fdopen(fd, "w") as f:
            f.write(self.codec.encode(self._db))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.name)
