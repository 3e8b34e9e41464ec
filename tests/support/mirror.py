"""A FreeBSD mirror on 127.0.0.1: <root>/<machine>/<machine_arch>/<release>/{base.txz,MANIFEST}."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve directory over HTTP on an ephemeral loopback port; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def publish(root: Path, archive: Path, manifest: Path, release: str = "14.3-RELEASE",
            arch_dirs: str = "amd64/amd64") -> Path:
    """Lay out a release in the mirror tree; return its directory."""
    target = root / arch_dirs / release
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, target / "base.txz")
    shutil.copyfile(manifest, target / "MANIFEST")
    return target
