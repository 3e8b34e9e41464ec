"""A FreeBSD mirror on 127.0.0.1: <root>/<machine>/<machine_arch>/<release>/{base.txz,MANIFEST}.

Like a real mirror it answers Range requests (206); for tests it logs every request and can
inject one fault per path: cut the body after N bytes, or stall before sending it."""

from __future__ import annotations

import http.server
import re
import shutil
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Mirror:
    url: str
    root: Path
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    faults: dict[str, tuple[str, float]] = field(default_factory=dict)  # path -> fault


class _Handler(http.server.BaseHTTPRequestHandler):
    mirror: Mirror

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        mirror = self.mirror
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        wanted = self.headers.get("Range")
        mirror.requests.append((path, wanted))
        file = mirror.root / path.lstrip("/")
        if ".." in path or not file.is_file():
            self.send_error(404)
            return
        data = file.read_bytes()
        start = 0
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-", wanted)
            start = int(match.group(1)) if match else 0
            if start >= len(data):
                self.send_error(416)
                return
        body = data[start:]
        self.send_response(206 if wanted else 200)
        self.send_header("Content-Length", str(len(body)))
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        kind, amount = mirror.faults.pop(path, ("", 0))
        if kind == "stall":
            time.sleep(amount)
        if kind == "cut":
            self.wfile.write(body[:int(amount)])
            self.close_connection = True
            return
        self.wfile.write(body)


@contextmanager
def serve(root: Path) -> Iterator[Mirror]:
    """Serve root over HTTP on an ephemeral loopback port."""
    mirror = Mirror(url="", root=root)
    handler = type("Handler", (_Handler,), {"mirror": mirror})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    mirror.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield mirror
    finally:
        server.shutdown()
        server.server_close()


def publish(root: Path, archive: Path, manifest: Path, release: str,
            arch_dirs: str = "amd64/amd64") -> Path:
    """Lay out a release in the mirror tree; return its directory."""
    target = root / arch_dirs / release
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(archive, target / "base.txz")
    shutil.copyfile(manifest, target / "MANIFEST")
    return target
