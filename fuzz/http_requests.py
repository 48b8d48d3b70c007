"""Fuzz the HTTP API as a whole, in process (atheris, coverage-guided).

One gateway on the embedded defaults (temporary data dir, SQLite, local objects) with the
Lightfile6, ingress and LDO receivers besides the core API. Each input becomes one request to
its ASGI app: a documented path (from the app's own OpenAPI document) with fuzzed path
parameters and query string, one of its methods (or another), fuzzed headers (content type and
encoding, a valid or bad token, tenant, idempotency key, Range, …) and a fuzzed body, sent in
one or several chunks. Bad input must get a 4xx; any 5xx but 503 (a full journal, a busy
store) is a finding, and so is a request that gets no complete response.

    pip install -e '.[fuzz]'
    python fuzz/http_requests.py fuzz/corpus/http_requests -max_len=4096 -timeout=20 -max_total_time=300

Findings are written to the current directory (``crash-…``, ``timeout-…``); turn each into a
test. The corpus directory is created if missing and kept between runs (not committed).
"""

import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports():
    from sluiceway.http.app import api_spec, create_app
    from sluiceway.runtime.gateway import Gateway

from sluiceway.config.loader import validate_tree

DATA = Path(tempfile.mkdtemp(prefix="sluice-fuzz-http-"))
CONFIG = validate_tree({
    "data_dir": str(DATA), "log": {"level": "error", "format": "json"},
    "sources": [{"type": "lightfile6"}, {"type": "ingress", "valid_upload_types": "ols"}, {"type": "ldo"}],
    "sinks": [{"name": "objects", "type": "object_store"}, {"name": "sql", "type": "sql"},
              {"name": "files", "type": "attachments"}],
})
LOOP = asyncio.new_event_loop()
GATEWAY = Gateway(CONFIG)
GATEWAY.access_log.enabled = False
LOOP.run_until_complete(GATEWAY.open())
APP = create_app(GATEWAY, manage_lifecycle=False)
TOKENS = [LOOP.run_until_complete(GATEWAY.store.create_token(t, s))[1]
          for t, s in (("acme", ["admin"]), ("acme", ["ingest", "read"]), ("globex", ["read"]))]
OPERATIONS = sorted((path, method.upper()) for path, item in api_spec(GATEWAY.sources)["paths"].items()
                    for method in item if method in ("get", "post", "put", "delete", "patch"))
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
CONTENT_TYPES = [b"application/json", b"application/x-ndjson", b"text/plain", b"application/octet-stream",
                 b"multipart/form-data; boundary=x", b"application/vnd.redhat.ols.periodic+tgz", b""]
HEADERS = [b"content-encoding", b"idempotency-key", b"x-sluice-tenant", b"range", b"user_token", b"x-request-id",
           b"x-rh-identity", b"content-length", b"if-none-match"]


def request(fdp: atheris.FuzzedDataProvider) -> dict[str, Any]:
    path, method = OPERATIONS[fdp.ConsumeIntInRange(0, len(OPERATIONS) - 1)]
    # each parameter: a fuzzed segment (no "/")
    path = re.sub(r"\{[^}]*\}", lambda _: fdp.ConsumeUnicodeNoSurrogates(12).replace("/", ""), path)
    if fdp.ConsumeIntInRange(0, 9) == 0:
        method = METHODS[fdp.ConsumeIntInRange(0, len(METHODS) - 1)]
    headers = [(b"host", b"fuzz")]
    auth = fdp.ConsumeIntInRange(0, 4)
    if auth < len(TOKENS):
        headers.append((b"authorization", b"Bearer " + TOKENS[auth].encode()))
    elif auth == len(TOKENS):
        headers.append((b"authorization", fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))))
    headers.append((b"content-type", CONTENT_TYPES[fdp.ConsumeIntInRange(0, len(CONTENT_TYPES) - 1)]))
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        headers.append((HEADERS[fdp.ConsumeIntInRange(0, len(HEADERS) - 1)], fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 30))))
    query = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 60))
    chunks = fdp.ConsumeIntInRange(1, 3)
    return {"path": path, "method": method, "headers": headers, "query_string": query, "chunks": chunks,
            "body": fdp.ConsumeBytes(fdp.remaining_bytes())}


async def send_one(req: dict[str, Any]) -> tuple[int | None, bool]:
    body, n = req.pop("body"), req.pop("chunks")
    size = max(1, -(-len(body) // n))
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    scope = {"type": "http", "http_version": "1.1", "scheme": "http", "root_path": "", "raw_path": None,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), **req}
    status, done = None, False

    async def receive() -> dict[str, Any]:
        if parts:
            chunk = parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(parts)}
        await asyncio.sleep(3600)  # nothing more: a client that waits for the answer
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, done
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body" and not message.get("more_body"):
            done = True

    await asyncio.wait_for(APP(scope, receive, send), 15)
    return status, done


def test_one_input(data: bytes) -> None:
    req = request(atheris.FuzzedDataProvider(data))
    shown = {k: v for k, v in req.items() if k != "body"}
    status, done = LOOP.run_until_complete(send_one(req))
    assert status is not None and done, f"no complete response: {shown}"
    assert status < 500 or status == 503, f"{status} for {shown}"


if __name__ == "__main__":
    from harness import main

    main(test_one_input)
