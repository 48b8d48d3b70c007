import io

import orjson

from sluiceway.telemetry.logging import AccessLog


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_access_log_json_line_per_request():
    buf = io.BytesIO()
    stream = io.TextIOWrapper(buf, encoding="utf-8")
    log = AccessLog("json", stream=stream)
    log.log("POST", "/v1/streams/usage/events", 202, 0.0012, "rid-1", "acme", "usage")
    log.log("GET", "/health", 200, 0.0001, None, None, None)
    log.flush()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2
    first = orjson.loads(lines[0])
    assert first["request_id"] == "rid-1" and first["tenant"] == "acme" and first["stream"] == "usage"
    assert first["status"] == 202 and first["latency_ms"] == 1.2 and first["timestamp"].endswith("Z")
    assert first["method"] == "POST" and first["path"] == "/v1/streams/usage/events"


def test_access_log_human_on_tty():
    stream = FakeTTY()
    log = AccessLog("auto", stream=stream)
    log.log("POST", "/x", 400, 0.002, "r", "t", "s")
    log.flush()
    line = stream.getvalue()
    assert "POST /x 400 2.0ms tenant=t stream=s request_id=r" in line
    assert not line.startswith("{")


def test_disabled_access_log_writes_nothing():
    stream = FakeTTY()
    log = AccessLog("json", stream=stream, enabled=False)
    log.log("POST", "/x", 202, 0.001, None, None, None)
    log.flush()
    assert stream.getvalue() == ""
