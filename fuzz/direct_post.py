"""Differential fuzzing of the direct POST (src/sluiceway/http/protocol.py) against uvicorn's
own protocol (atheris, coverage-guided).

Each input becomes the bytes a client sends on one connection: one to three ingest POSTs
or Lightfile6 reports
(pipelined or not, split into fuzzed pieces) with fuzzed stream names, tokens, content types
and encodings, tenants, Idempotency-Keys, Expect, Connection and Content-Length or chunked
framing, and bodies that are fuzzed bytes or JSON built from them. The same bytes go to a
``SluiceHttpProtocol`` (which answers what it can from its callbacks) and to a plain uvicorn
``HttpToolsProtocol`` (every request an ASGI task), both over a fake transport into one gateway
on the embedded defaults. A finding is any difference between the two: the number of answers,
a status, an error code, an ``accepted`` count, whether the connection was closed; and any 500.

    pip install -e '.[fuzz]'
    python fuzz/direct_post.py fuzz/corpus/direct_post -max_len=2048 -timeout=20 -max_total_time=300
"""

import asyncio
import gzip
import tempfile
from pathlib import Path
from typing import Any

import atheris

with atheris.instrument_imports():
    from sluiceway.http.app import create_app
    from sluiceway.http.protocol import protocol_class
    from sluiceway.runtime.gateway import Gateway

import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from sluiceway.config.loader import validate_tree

DATA = Path(tempfile.mkdtemp(prefix="sluice-fuzz-direct-"))
# Tokens stay cached for the whole run (warmed below): a lookup in one run and a cache hit in
# the other would answer at different moments, which is not what this compares.
CONFIG = validate_tree({"data_dir": str(DATA), "log": {"level": "error", "format": "json"},
                        "server": {"token_cache_ttl": 10 ** 6},
                        "sources": [{"type": "lightfile6", "max_report_bytes": 300}]})
LOOP = asyncio.new_event_loop()
asyncio.set_event_loop(LOOP)
GATEWAY = Gateway(CONFIG)
GATEWAY.access_log.enabled = False
LOOP.run_until_complete(GATEWAY.open())
APP = create_app(GATEWAY, manage_lifecycle=False)
TOKENS = [LOOP.run_until_complete(GATEWAY.store.create_token(t, s))[1]
          for t, s in (("acme", ["ingest"]), ("acme", ["read"]), ("globex", ["admin"]))]
for _token in TOKENS:
    LOOP.run_until_complete(GATEWAY.auth.token(f"Bearer {_token}"))
UVICORN = uvicorn.Config(APP, lifespan="off", log_level="critical")
UVICORN.load()
DIRECT = protocol_class(APP.direct)
STREAMS = ["usage", "errors", "Usage", "a" * 65, "x/y", "%75sage", ""]
LIGHTFILE6 = [b"PUT /usage", b"PUT /error", b"PUT /specimen?uri=a.png", b"POST /usage", b"PUT /usage/"]
CONTENT_TYPES = [b"application/json", b"application/x-ndjson", b"text/plain", b"text/csv", b"application/ld+json", None]


class Transport(asyncio.Transport):
    """What the protocols write, and whether they closed the connection."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.out += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def body_of(fdp: atheris.FuzzedDataProvider) -> bytes:
    kind = fdp.ConsumeIntInRange(0, 3)
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
    if kind == 0:
        return raw
    text = raw.decode("utf-8", "replace")
    if kind == 1:
        return orjson.dumps({"event": text, "n": fdp.ConsumeInt(8)})
    if kind == 2:
        return b"".join(orjson.dumps({"line": i, "t": text}) + b"\n" for i in range(fdp.ConsumeIntInRange(0, 4)))
    return orjson.dumps([{"i": i} for i in range(fdp.ConsumeIntInRange(0, 3))])


def one_request(fdp: atheris.FuzzedDataProvider) -> bytes:
    stream = STREAMS[fdp.ConsumeIntInRange(0, len(STREAMS) - 1)]
    headers = [b"host: fuzz"]
    target = b"POST /v1/streams/%s/events" % stream.encode()
    if fdp.ConsumeIntInRange(0, 3) == 0:  # a Lightfile6 route instead
        target = LIGHTFILE6[fdp.ConsumeIntInRange(0, len(LIGHTFILE6) - 1)]
        user = [b"alice", b"", b"../x", b"al ice"][fdp.ConsumeIntInRange(0, 3)]
        headers.append([b"user_token: ", b"user-token: "][fdp.ConsumeIntInRange(0, 1)] + user)
    auth = fdp.ConsumeIntInRange(0, 4)
    if auth < len(TOKENS):
        headers.append(b"authorization: Bearer " + TOKENS[auth].encode())
    elif auth == len(TOKENS):
        headers.append(b"authorization: " + fdp.ConsumeBytes(12).replace(b"\r", b"").replace(b"\n", b""))
    ctype = CONTENT_TYPES[fdp.ConsumeIntInRange(0, len(CONTENT_TYPES) - 1)]
    if ctype is not None:
        headers.append(b"content-type: " + ctype)
    body = body_of(fdp)
    if fdp.ConsumeBool():
        encoding = [b"gzip", b"identity", b"br", b"GZIP"][fdp.ConsumeIntInRange(0, 3)]
        headers.append(b"content-encoding: " + encoding)
        if encoding.lower() == b"gzip" and fdp.ConsumeBool():
            body = gzip.compress(body)
    for name, values in ((b"x-sluice-tenant", [b"acme", b"globex", b"Bad"]), (b"idempotency-key", [b"k1@", b"k2@", b""]),
                         (b"expect", [b"100-continue"]), (b"connection", [b"close", b"keep-alive"])):
        if fdp.ConsumeIntInRange(0, 3) == 0:
            headers.append(name + b": " + values[fdp.ConsumeIntInRange(0, len(values) - 1)])
    framing = fdp.ConsumeIntInRange(0, 5)
    if framing == 0:  # chunked
        headers.append(b"transfer-encoding: chunked")
        body = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + b"0\r\n\r\n"
    elif framing == 1:  # a Content-Length that is not the body's
        headers.append(b"content-length: %d" % max(0, len(body) + fdp.ConsumeIntInRange(-3, 3)))
    elif framing != 2:  # 2: no Content-Length at all
        headers.append(b"content-length: %d" % len(body))
    version = b"1.0" if fdp.ConsumeIntInRange(0, 7) == 0 else b"1.1"
    return b"%s HTTP/%s\r\n%s\r\n\r\n%s" % (target, version, b"\r\n".join(headers), body)


def answers(out: bytes) -> list[tuple[int, Any]]:
    """(status, what of the JSON body must match) per response in ``out``."""
    found = []
    while out:
        head, sep, rest = out.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError(f"a response cut short: {out[:200]!r}")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        fields = dict(line.split(b": ", 1) for line in lines[1:])
        length = int(fields.get(b"content-length", b"0"))
        body, out = rest[:length], rest[length:]
        if status == 100:
            continue
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = body  # uvicorn's own text answers (an invalid request)
        if isinstance(doc, dict):
            doc = doc.get("accepted", doc.get("error"))
        found.append((status, doc))
    return found


def run(protocol_cls: type, pieces: list[bytes]) -> tuple[list[tuple[int, Any]], bool]:
    state = ServerState()
    proto = protocol_cls(config=UVICORN, server_state=state, app_state={}, _loop=LOOP)
    transport = Transport()
    proto.connection_made(transport)

    async def feed() -> None:
        for piece in pieces:
            proto.data_received(piece)
            await asyncio.sleep(0)
        quiet = 0
        for _ in range(2000):  # until the answers stop changing (the journal syncs in between)
            before = len(transport.out)
            await asyncio.sleep(0.002)
            if len(transport.out) != before or GATEWAY._writer._queued:  # noqa: SLF001
                quiet = 0
            elif not state.tasks and (transport.closed or proto.cycle is None or proto.cycle.response_complete):
                return
            else:  # a request (or its task) still waiting for the rest of its body, or for a store
                quiet += 1
                if quiet == 50:
                    return

    LOOP.run_until_complete(feed())
    proto.connection_lost(None)
    if proto.timeout_keep_alive_task is not None:
        proto.timeout_keep_alive_task.cancel()
    return answers(bytes(transport.out)), transport.closed


def test_one_input(data: bytes) -> None:
    global RUN
    RUN += 1
    fdp = atheris.FuzzedDataProvider(data)
    raw = b"".join(one_request(fdp) for _ in range(fdp.ConsumeIntInRange(1, 3)))
    cuts = sorted({fdp.ConsumeIntInRange(0, len(raw)) for _ in range(fdp.ConsumeIntInRange(0, 3))})

    def pieces(side: bytes) -> list[bytes]:
        # "@" in an Idempotency-Key stands for this input and side: no replay of another's answer
        sent = raw.replace(b"@", b"%08d%s" % (RUN, side))
        return [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)]) if b > a]

    direct = run(DIRECT, pieces(b"d"))
    plain = run(HttpToolsProtocol, pieces(b"p"))
    assert direct == plain, f"direct {direct} != uvicorn {plain} for {raw[:600]!r}"
    assert all(status < 500 or status == 503 for status, _ in direct[0]), f"{direct} for {raw[:600]!r}"


RUN = 0


if __name__ == "__main__":
    from harness import main

    main(test_one_input)
