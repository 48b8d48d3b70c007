"""encode_events: the journal entries of the hot path (ids, event_time, payload as sent)."""

from __future__ import annotations

import uuid

import orjson
import pytest

from sluiceway.http import ingest
from sluiceway.http.body import parse_events_raw
from sluiceway.http.ingest import _EVENT_TIME, encode_events


def _encode(events):
    return [orjson.loads(e) for e in encode_events(events, tenant="t", stream="s", source="http",
                                                     received_at="2026-01-01T00:00:00Z", idempotency_key=None)]


def test_ids_are_uuid7_unique_and_in_event_order():
    body = b"".join(b'{"n":%d}\n' % i for i in range(5000))
    docs = _encode(parse_events_raw(body, True, _EVENT_TIME)) + _encode([({"n": -1}, None)])
    ids = [d["id"] for d in docs]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)  # in order within a call, and the next call's ids come after
    for i in ids[:3] + ids[-3:]:
        u = uuid.UUID(i)
        assert (u.version, u.variant) == (7, uuid.RFC_4122) and str(u) == i
    assert [d["payload"]["n"] for d in docs] == [*range(5000), -1]


def test_ids_do_not_wrap_when_the_random_tail_is_near_its_end(monkeypatch):
    monkeypatch.setattr(ingest, "_uuid7", lambda: uuid.UUID("01a23806-db15-748d-bbda-d466fffffffe"))
    ids = [d["id"] for d in _encode([({"n": i}, None) for i in range(4)])]
    assert ids == [f"01a23806-db15-748d-bbda-d466{t:08x}" for t in range(0xFFFFFFFC, 0x100000000)]


@pytest.mark.parametrize("line, expected", [
    (b'{"event_time":"2026-01-02T03:04:05Z","timestamp":"2020-01-01T00:00:00Z"}', "2026-01-02T03:04:05Z"),
    (b'{"event_time":17,"timestamp":"2026-01-02T03:04:05+01:00"}', "2026-01-02T02:04:05Z"),
    (b'{"timestamp":null,"time":"2026-01-02T03:04:05"}', "2026-01-02T03:04:05Z"),
    (b'{"time":"yesterday"}', None),
    (b'{"time":5}', None),
    (b'{"time":"0001-01-01T00:00:00+01:00"}', None),  # before the first time in UTC (was a 500)
])
def test_event_time_is_the_first_time_key_holding_a_string(line, expected):
    """The same for the NDJSON path (msgspec Struct) and for parsed objects (dicts)."""
    [probed] = _encode(parse_events_raw(line, True, _EVENT_TIME))
    [parsed] = _encode(parse_events_raw(line, False))
    assert probed["event_time"] == parsed["event_time"] == expected
    assert probed["payload"] == parsed["payload"] == orjson.loads(line)


def test_now_rfc3339_has_microseconds_and_follows_the_clock(monkeypatch):
    import re
    from datetime import datetime, timezone

    from sluiceway import record

    stamp = ingest.now_rfc3339()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    assert abs((datetime.fromisoformat(stamp[:-1] + "+00:00") - datetime.now(timezone.utc)).total_seconds()) < 5
    # whole second (no fraction in isoformat), then the next second: the cached part moves on
    monkeypatch.setattr(record.time, "time_ns", lambda: 1_767_225_599_000_000_000)
    assert ingest.now_rfc3339() == "2025-12-31T23:59:59.000000Z"
    monkeypatch.setattr(record.time, "time_ns", lambda: 1_767_225_600_000_007_000)
    assert ingest.now_rfc3339() == "2026-01-01T00:00:00.000007Z"
