"""http.protocol: the hot POST answered from the protocol's callbacks (no ASGI task), on a
real uvicorn server with raw sockets; everything it does not take goes the ASGI way."""

from __future__ import annotations

import asyncio
import contextlib
import gzip

import orjson
import pytest
import uvicorn

from sluiceway.errors import JournalError, JournalFull
from sluiceway.http.app import create_app
from sluiceway.http.protocol import DIRECT_MAX_BODY, protocol_class
from sluiceway.runtime.gateway import Gateway
from tests.helpers import eventually, free_port, make_config

pytestmark = pytest.mark.asyncio


class Served:
    def __init__(self, gw: Gateway, app, server: uvicorn.Server, port: int, token: str):
        self.gw, self.app, self.server, self.port, self.token = gw, app, server, port, token
        self.direct: list[bool] = []  # per request a route saw: whether it was answered directly

    async def connect(self):
        return await asyncio.open_connection("127.0.0.1", self.port)

    def post(self, body: bytes, *, path: str = "/v1/streams/usage/events", headers: dict[str, str] | None = None,
             version: str = "1.1", token: str | None = None) -> bytes:
        h = {"Host": "t", "Authorization": f"Bearer {token or self.token}", "Content-Length": str(len(body)),
             **(headers or {})}
        head = "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None)
        return f"POST {path} HTTP/{version}\r\n{head}\r\n".encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if status == 100:
        return await read_response(reader)
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


@contextlib.asynccontextmanager
async def served(tmp_path, **tree):
    gw = Gateway(make_config(tmp_path / "d", **tree), role="all")
    gw.access_log.enabled = False
    await gw.open()
    app = create_app(gw, manage_lifecycle=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, http=protocol_class(app.direct),
                                           lifespan="off", log_level="warning", timeout_graceful_shutdown=10))
    task = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: asyncio.sleep(0, server.started))
        _, token = await gw.store.create_token("acme", ["ingest", "read"])
        s = Served(gw, app, server, port, token)
        def spy(route):  # s.direct: False when the route declines, else what its handler answered
            def at_headers(*args):
                handler = route(*args)
                if handler is None:
                    s.direct.append(False)
                    return None

                def with_body(*args):
                    handled = handler(*args)
                    s.direct.append(handled)
                    return handled
                return with_body
            return at_headers

        app.ingest.direct = spy(app.ingest.direct)
        app.direct_exact = {key: spy(route) for key, route in app.direct_exact.items()}
        yield s
    finally:
        server.should_exit = True
        await task
        await gw.aclose()


async def exchange(s: Served, *requests: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send the requests in one write (pipelined) on a new connection; read their answers."""
    reader, writer = await s.connect()
    try:
        writer.write(b"".join(requests))
        return [await read_response(reader) for _ in requests]
    finally:
        writer.close()


async def test_a_cached_token_takes_the_direct_way_with_the_same_answer(tmp_path):
    async with served(tmp_path) as s:
        [(st1, h1, b1)] = await exchange(s, s.post(b'{"event":"first"}'))  # token lookup: the ASGI way
        [(st2, h2, b2)] = await exchange(s, s.post(b'{"event":"second"}', headers={"X-Request-Id": "abc"}))
        assert s.direct == [False, True]
        assert st1 == st2 == 202
        assert h1.keys() == h2.keys() and h2["content-type"] == "application/json" and "date" in h2
        assert orjson.loads(b2) == {"request_id": "abc", "accepted": 1}
        assert orjson.loads(b1)["accepted"] == 1

        async def stored():
            _, _, body = (await exchange(s, f"GET /v1/streams/usage/events HTTP/1.1\r\nHost: t\r\n"
                                            f"Authorization: Bearer {s.token}\r\n\r\n".encode()))[0]
            return [e["payload"] for e in orjson.loads(body)["events"]]

        assert await eventually(lambda: _len_is(stored, 2)) == [{"event": "first"}, {"event": "second"}]


async def _len_is(fetch, n):
    got = await fetch()
    return got if len(got) == n else None


async def test_pipelined_requests_are_answered_in_order_on_one_connection(tmp_path):
    async with served(tmp_path) as s:
        await exchange(s, s.post(b"{}"))  # caches the token
        answers = await exchange(
            s, s.post(b'{"a":1}'), s.post(b'[{"a":1},{"a":2}]'),
            s.post(b'{"a":1}\n{"a":2}\n{"a":3}\n', headers={"Content-Type": "application/x-ndjson"}),
            s.post(b'{"a":', headers={"X-Request-Id": "bad"}), s.post(b'{"a":4}'))
        assert [a[0] for a in answers] == [202, 202, 202, 400, 202]
        assert [orjson.loads(a[2]).get("accepted") for a in answers] == [1, 2, 3, None, 1]
        assert orjson.loads(answers[3][2])["error"] == "bad_request"
        assert s.direct == [False, True, True, True, False, True]


@pytest.mark.parametrize("kind", ["malformed", "not_object", "token", "scope", "media", "stream", "tenant"])
async def test_errors_are_answered_the_asgi_way(tmp_path, kind):
    async with served(tmp_path) as s:
        _, read_only = await s.gw.store.create_token("acme", ["read"])
        await exchange(s, s.post(b"{}"), s.post(b"{}", token=read_only))  # both tokens cached
        request, status = {
            "malformed": (s.post(b'{"a":1,}'), 400),
            "not_object": (s.post(b"[1]"), 400),
            "token": (s.post(b"{}", token="nope"), 401),
            "scope": (s.post(b"{}", token=read_only), 403),
            "media": (s.post(b"{}", headers={"Content-Type": "text/csv"}), 415),
            "stream": (s.post(b"{}", path="/v1/streams/Bad!/events"), 400),
            "tenant": (s.post(b"{}", headers={"X-Sluice-Tenant": "globex"}), 403),
        }[kind]
        [(st, h, body)] = await exchange(s, request)
        assert st == status and h["content-type"] == "application/json"
        assert set(orjson.loads(body)) == {"error", "detail"}
        assert s.direct[-1] is False


async def test_what_the_direct_way_does_not_take_still_works(tmp_path):
    async with served(tmp_path) as s:
        await exchange(s, s.post(b"{}"))
        big = b"[" + b",".join([b'{"pad":"' + b"x" * 100 + b'"}'] * 700) + b"]"
        assert len(big) > DIRECT_MAX_BODY
        chunked = (b"POST /v1/streams/usage/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + s.token.encode()
                   + b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n")
        gz = gzip.compress(b'{"z":1}')
        answers = await exchange(s, s.post(big), chunked, s.post(b"{}", headers={"Expect": "100-continue"}),
                                 s.post(gz, headers={"Content-Encoding": "gzip"}))
        assert [(a[0], orjson.loads(a[2])["accepted"]) for a in answers] == [(202, 700), (202, 1), (202, 1), (202, 1)]
        assert s.direct == [False, True]  # only the gzip body went direct

        idem = {"Idempotency-Key": "k1"}
        first, again = await exchange(s, s.post(b'{"n":1}', headers=idem), s.post(b'{"n":1}', headers=idem))
        assert first[2] == again[2] and again[1].get("idempotent-replayed") == "true"


async def test_connection_close_and_http_1_0_close_after_the_answer(tmp_path):
    async with served(tmp_path) as s:
        await exchange(s, s.post(b"{}"))
        for request in (s.post(b"{}", headers={"Connection": "close"}), s.post(b"{}", version="1.0")):
            reader, writer = await s.connect()
            writer.write(request)
            status, headers, _ = await read_response(reader)
            assert status == 202 and headers["connection"] == "close"
            assert await reader.read() == b""  # the server closed the connection
            writer.close()
        assert s.direct == [False, True, True]


@pytest.mark.parametrize("failure", ["write", "full"])
async def test_a_journal_that_cannot_take_the_events_is_a_503(tmp_path, monkeypatch, failure):
    async with served(tmp_path) as s:
        await exchange(s, s.post(b"{}"))
        loop = asyncio.get_running_loop()

        def failing(items):
            if failure == "full":
                raise JournalFull("journal partition w0 is full", retry_after=2.0)
            fut = loop.create_future()
            loop.call_soon(fut.set_exception, JournalError("write failed: no space left on device"))
            return fut

        monkeypatch.setattr(s.gw._writer, "append_soon", failing)
        [(status, headers, body)] = await exchange(s, s.post(b"{}"))
        assert s.direct[-1] is True
        assert status == 503 and "retry-after" in headers
        assert orjson.loads(body)["error"] == {"write": "journal_unavailable", "full": "journal_full"}[failure]
        rejected = s.gw.metrics.events_rejected.labels(reason=f"journal_{'error' if failure == 'write' else 'full'}")
        assert rejected._value.get() == 1  # counted once


async def held_at_the_journal(s: Served, monkeypatch, body: bytes):
    """Send a POST whose records go to the journal but whose answer waits until the test
    calls ``release()``; returns (reader, writer, release)."""
    held = []
    append_soon = s.gw._writer.append_soon

    def hold(items):
        fut = asyncio.get_running_loop().create_future()
        held.append((fut, append_soon(items)))
        return fut

    monkeypatch.setattr(s.gw._writer, "append_soon", hold)
    reader, writer = await s.connect()
    writer.write(s.post(body))
    await eventually(lambda: asyncio.sleep(0, bool(held)))

    async def release():
        fut, real = held[0]
        fut.set_result(await real)

    return reader, writer, release


async def test_shutdown_waits_for_a_request_in_flight(tmp_path, monkeypatch):
    async with served(tmp_path) as s:
        await exchange(s, s.post(b"{}"))
        reader, writer, release = await held_at_the_journal(s, monkeypatch, b'{"late":true}')
        s.server.should_exit = True  # graceful shutdown starts while the request waits for the journal
        await asyncio.sleep(0.3)
        await release()
        status, headers, body = await read_response(reader)
        assert status == 202 and headers["connection"] == "close" and orjson.loads(body)["accepted"] == 1
        assert await reader.read() == b""
        writer.close()


async def test_a_client_that_leaves_before_the_sync_does_not_break_the_server(tmp_path, monkeypatch):
    async with served(tmp_path) as s:
        await exchange(s, s.post(b"{}"))
        _, writer, release = await held_at_the_journal(s, monkeypatch, b'{"gone":true}')
        writer.close()
        await asyncio.sleep(0.1)
        await release()  # the answer has nowhere to go
        monkeypatch.undo()
        [(status, _, _)] = await exchange(s, s.post(b"{}"))
        assert status == 202


@pytest.mark.parametrize("cached", [False, True], ids=["asgi", "direct"])
async def test_a_client_that_leaves_mid_body_is_logged_as_499_either_way(tmp_path, monkeypatch, cached):
    async with served(tmp_path) as s:
        if cached:
            await exchange(s, s.post(b"{}"))
        seen: list[int] = []
        observe = s.gw.observe_request
        monkeypatch.setattr(s.gw, "observe_request", lambda route, method, status, *a, **kw: (
            seen.append(status), observe(route, method, status, *a, **kw)))
        reader, writer = await s.connect()
        whole = s.post(b'{"event":"never finished"}')
        writer.write(whole[:-5])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        assert await eventually(lambda: asyncio.sleep(0, seen == [499]))
        # asgi: the route declined the request (token not cached yet); direct: only the first
        # request is there, the second one's handler never ran (its body never came)
        assert s.direct == [False]
        [(status, _, _)] = await exchange(s, s.post(b"{}"))
        assert status == 202


async def test_lightfile6_reports_take_the_direct_way(tmp_path):
    async with served(tmp_path, sources=[{"type": "lightfile6"}]) as s:
        def put(path, body, user="alice", **headers):
            return s.post(body, path=path, headers={"USER_TOKEN": user, "Authorization": None, **headers}).replace(
                b"POST ", b"PUT ", 1)

        chunked = (b"PUT /usage HTTP/1.1\r\nHost: t\r\nUSER_TOKEN: bob\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"7\r\n{\"b\":2}\r\n0\r\n\r\n")
        answers = await exchange(s, put("/usage", b'{"a":1}', **{"X-Request-Id": "r1"}), chunked,
                                 put("/error", b'{"e":1}'), put("/usage", b"{}", user=""), put("/error", b"{nope"))
        assert [a[0] for a in answers] == [204, 204, 204, 401, 400]
        assert s.direct == [True, True, False, False]  # the chunked one never asked
        direct, asgi = answers[0][1], answers[1][1]
        assert direct.keys() == asgi.keys() and "content-length" not in direct and direct["x-request-id"] == "r1"
        assert answers[0][2] == answers[1][2] == b""
        assert orjson.loads(answers[3][2])["message"] == "USER_TOKEN header is required"
        assert "message" in orjson.loads(answers[4][2])
        _, reader_token = await s.gw.store.create_token("default", ["read"])

        async def stored():
            _, _, body = (await exchange(s, f"GET /v1/streams/usage/events HTTP/1.1\r\nHost: t\r\n"
                                            f"Authorization: Bearer {reader_token}\r\n\r\n".encode()))[0]
            return [(e["payload"]["user"], e["payload"]["report"]) for e in orjson.loads(body)["events"]]

        assert await eventually(lambda: _len_is(stored, 2)) == [("alice", {"a": 1}), ("bob", {"b": 2})]


@pytest.mark.parametrize("route", ["ingest", "lightfile6"])
async def test_a_body_over_the_limit_is_refused_from_its_headers_like_uvicorn_would(tmp_path, route):
    """Found by fuzz/direct_post.py: the ASGI way answers 413 from Content-Length alone, before
    the body; a direct handler that waited for the body first lost that answer when a malformed
    request behind it made uvicorn close the connection."""
    async with served(tmp_path, server={"max_body_bytes": 100},
                      sources=[{"type": "lightfile6", "max_report_bytes": 100}]) as s:
        await exchange(s, s.post(b"{}"))
        big = b'{"pad":"' + b"x" * 200 + b'"}'
        request = s.post(big) if route == "ingest" else s.post(
            big, path="/usage", headers={"USER_TOKEN": "alice"}).replace(b"POST ", b"PUT ", 1)
        reader, writer = await s.connect()
        writer.write(request[:-len(big)])  # the headers only: the answer must not wait for the body
        status, _, body = await asyncio.wait_for(read_response(reader), 20)  # not a timing check: a hang
        assert status == 413 and orjson.loads(body)["error"] == "payload_too_large"
        writer.close()
        assert s.direct[-1] is False
