"""A fake insights-ingress upload endpoint on 127.0.0.1, in a thread, for the ship agent's tests.

It parses each request strictly (one multipart part, exact boundary framing), records it, and
answers from a script of behaviours; when the script is empty it accepts (202 + request_id).
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = "/api/ingress/v1/upload"


@dataclass
class Upload:
    path: str
    headers: list[tuple[str, str]]  # in the order received
    content_type: str
    parts: list[dict[str, Any]]
    answered: int = 0

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    @property
    def archive(self) -> bytes:
        return self.parts[0]["data"]

    def members(self) -> dict[str, bytes]:
        with tarfile.open(fileobj=io.BytesIO(self.archive), mode="r:gz") as tar:
            return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@dataclass
class Reply:
    status: int = 202
    body: bytes | None = None  # None + 202 → {"request_id": …}
    hang: bool = False  # never answer (until the server stops)
    headers: dict[str, str] = field(default_factory=dict)


class FakeIngress:
    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.uploads: list[Upload] = []
        self.on_request: Callable[[Upload], None] | None = None
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                up = Upload(self.path, list(self.headers.items()), self.headers.get("Content-Type", ""),
                            parse_multipart(self.headers.get("Content-Type", ""), body))
                with fake._lock:
                    fake.uploads.append(up)
                    reply = fake.script.pop(0) if fake.script else Reply()
                if fake.on_request:
                    fake.on_request(up)
                if reply.hang:
                    fake._stop.wait(30)
                    return
                data = reply.body
                if data is None:
                    data = json.dumps({"request_id": f"req-{next(fake._ids)}", "upload": {"org_id": "1"}}).encode() \
                        if reply.status == 202 else b"boom"
                up.answered = reply.status
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and left is expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{PATH}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> "FakeIngress":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def accepted(self) -> list[Upload]:
        return [u for u in self.uploads if u.answered == 202]


def parse_multipart(content_type: str, body: bytes) -> list[dict[str, Any]]:
    """Strict multipart/form-data parsing: every part's headers and bytes."""
    m = re.fullmatch(r"multipart/form-data; boundary=([0-9a-f]+)", content_type)
    assert m, f"unexpected request Content-Type {content_type!r}"
    boundary = m.group(1).encode()
    assert body.endswith(b"--" + boundary + b"--\r\n"), "body must end with the closing boundary"
    chunks = body[: -len(b"--" + boundary + b"--\r\n")].split(b"--" + boundary + b"\r\n")
    assert chunks[0] == b"", "nothing may precede the first boundary"
    parts = []
    for raw in chunks[1:]:
        head, _, data = raw.partition(b"\r\n\r\n")
        assert data.endswith(b"\r\n")
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        disp = headers["Content-Disposition"]
        parts.append({
            "headers": headers,
            "name": re.search(r'\bname="([^"]*)"', disp).group(1),  # type: ignore[union-attr]
            "filename": re.search(r'filename="([^"]*)"', disp).group(1),  # type: ignore[union-attr]
            "content_type": headers.get("Content-Type"),
            "data": data[:-2],
        })
    return parts


def is_gzip(data: bytes) -> bool:
    return data[:4] == b"\x1f\x8b\x08\x00" and bool(gzip.decompress(data))
