from datetime import datetime, timezone

from sluiceway.logs.pino import level_name, normalise, record_time, severity
from sluiceway.sources.collect.process import record_id

UTC = timezone.utc
FALLBACK = datetime(2026, 1, 1, tzinfo=UTC)

PINO = {"level": 30, "time": 1743532098671, "pid": 27, "hostname": "api-1",
        "req": {"id": 9791, "method": "POST", "url": "/api/deals/118/ask", "query": {"x": "1"},
                "params": {"0": "deals/118/ask"},
                "headers": {"host": "api.example.com", "Authorization": "Bearer s3cret", "cookie": "sid=abc"},
                "remoteAddress": "::ffff:10.0.3.17", "remotePort": 51234},
        "timestamp": "2025-04-01T18:28:18.671Z", "context": "DealBotService", "message": "Answer generated",
        "authUserId": 42, "query": "What is the cap rate?", "cacheHit": False, "documentCount": 3,
        "processingTimeMs": 2140, "_file": {"key": "a/b.json.gz", "line": 7, "version": "e1"}}


def test_normalise_maps_every_column():
    row = normalise(PINO, id="0192", tenant="acme", fallback=FALLBACK)
    assert row["time"] == datetime(2025, 4, 1, 18, 28, 18, 671000, tzinfo=UTC)
    assert (row["level"], row["severity"]) == ("info", 30)
    assert (row["method"], row["url"], row["query"], row["params"]) == (
        "POST", "/api/deals/118/ask", {"x": "1"}, {"0": "deals/118/ask"})
    assert row["headers"] == {"host": "api.example.com", "Authorization": "[REDACTED]", "cookie": "[REDACTED]"}
    assert (row["context"], row["message"], row["auth_user_id"], row["pid"], row["hostname"]) == (
        "DealBotService", "Answer generated", "42", 27, "api-1")
    assert (row["remote_address"], row["remote_port"]) == ("::ffff:10.0.3.17", 51234)
    assert (row["processing_time_ms"], row["cache_hit"], row["document_count"]) == (2140.0, False, 3)
    assert (row["file"], row["line"]) == ("a/b.json.gz", 7)
    assert "_file" not in row["raw"] and row["raw"]["query"] == "What is the cap rate?"
    assert row["raw"]["req"]["headers"]["Authorization"] == "[REDACTED]"
    assert PINO["req"]["headers"]["Authorization"] == "Bearer s3cret"  # input untouched
    assert "s3cret" not in str(row) and "sid=abc" not in str(row)


def test_levels():
    assert [level_name(n) for n in (10, 20, 30, 40, 50, 60, 35)] == [
        "trace", "debug", "info", "warn", "error", "fatal", "35"]
    assert level_name("info") == "info" and severity("info") == 30 and severity("WARNING") == 40
    assert severity("nonsense") is None and level_name(None) is None and severity(True) is None


def test_time_sources_and_fallback():
    assert record_time({"time": 0}) == datetime(1970, 1, 1, tzinfo=UTC)
    assert record_time({"timestamp": "2025-04-01T00:00:00Z"}) == datetime(2025, 4, 1, tzinfo=UTC)
    assert record_time({"time": "nope", "timestamp": 1000}) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert record_time({}) is None
    row = normalise({"msg": "hi", "level": "warn"}, id="x", tenant="t", fallback=FALLBACK)
    assert (row["time"], row["message"], row["level"], row["severity"]) == (FALLBACK, "hi", "warn", 40)


def test_redact_res_and_top_level_headers():
    record = {"res": {"headers": {"set-cookie": "a"}}, "headers": {"COOKIE": "b", "x": 1}}
    r = normalise(record, id="x", tenant="t", fallback=FALLBACK)["raw"]
    assert r == {"res": {"headers": {"set-cookie": "[REDACTED]"}}, "headers": {"COOKIE": "[REDACTED]", "x": 1}}
    assert record == {"res": {"headers": {"set-cookie": "a"}}, "headers": {"COOKIE": "b", "x": 1}}  # unchanged


def test_ids_are_stable_and_distinct():
    a = record_id("logs", "k.json.gz", "etag1", 1)
    assert a == record_id("logs", "k.json.gz", "etag1", 1)
    assert len({a, record_id("logs", "k.json.gz", "etag1", 2), record_id("logs", "k.json.gz", "etag2", 1),
                record_id("other", "k.json.gz", "etag1", 1), record_id("logs", "j.json.gz", "etag1", 1)}) == 5


def test_ids_are_uuid5_of_source_key_version_line():
    import uuid

    from sluiceway.sources.collect.process import NAMESPACE, RecordIds

    for source, key, version in [("logs", "k.json.gz", "etag1"), ("ü", "dir/ключ €.gz", "12-1.5"), ("", "", "")]:
        ids = RecordIds(source, key, version)
        for line in [*range(0, 3000), 10**12, -1]:
            want = str(uuid.uuid5(NAMESPACE, f"{source}\x1f{key}\x1f{version}\x1f{line}"))
            assert ids(line) == want == record_id(source, key, version, line)
