from __future__ import annotations

import gzip
from datetime import datetime, timedelta, timezone

import orjson
import pytest

from sluiceway.record import Attachment, Record, new_id
from sluiceway.sinks.encoding import (
    decode_jsonl_gzip,
    encode_jsonl,
    encode_jsonl_gzip,
    group_records,
    iter_jsonl,
)

T0 = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=timezone.utc)
FIELDS = {"id", "tenant", "stream", "source", "received_at", "event_time", "idempotency_key", "attachments", "payload"}


def rec(i: int, stream: str = "usage", tenant: str = "acme", **kw) -> Record:
    return Record(id=new_id(), tenant=tenant, stream=stream, source="test",
                  received_at=T0 + timedelta(seconds=i), payload={"n": i, "text": "héllo"}, **kw)


def test_one_line_per_record_with_every_field():
    records = [rec(0, event_time=T0 - timedelta(hours=1), idempotency_key="k0",
                   attachments=[Attachment(key="blobs/x", sha256="ab" * 32, size=3)]), rec(1)]
    data = encode_jsonl(records)
    assert data.endswith(b"\n") and data.count(b"\n") == 2
    lines = [orjson.loads(line) for line in data.splitlines()]
    assert [set(d) for d in lines] == [FIELDS, FIELDS]
    first = lines[0]
    assert first["received_at"] == "2024-05-06T07:08:09.123000Z"
    assert first["event_time"] == "2024-05-06T06:08:09.123000Z"
    assert first["idempotency_key"] == "k0"
    assert first["attachments"] == [{"key": "blobs/x", "sha256": "ab" * 32, "size": 3,
                                     "content_type": "application/octet-stream", "name": None, "metadata": {}}]
    assert first["payload"] == {"n": 0, "text": "héllo"}
    assert lines[1]["event_time"] is None and lines[1]["attachments"] == []


def test_gzip_round_trip():
    records = [rec(i) for i in range(100)]
    data = encode_jsonl_gzip(records)
    assert data[:2] == b"\x1f\x8b"
    assert decode_jsonl_gzip(data) == records
    assert list(iter_jsonl(gzip.decompress(data))) == records


def test_gzip_is_deterministic():
    records = [rec(i) for i in range(50)]
    a = encode_jsonl_gzip(records)
    b = encode_jsonl_gzip(list(records))
    assert a == b
    assert a[4:8] == b"\x00\x00\x00\x00"  # header mtime 0


def test_levels():
    records = [rec(i) for i in range(200)]
    fast, small = encode_jsonl_gzip(records, level=1), encode_jsonl_gzip(records, level=9)
    assert decode_jsonl_gzip(fast) == decode_jsonl_gzip(small) == records
    for bad in (0, 10):
        with pytest.raises(ValueError, match="1-9"):
            encode_jsonl_gzip(records, level=bad)


def test_empty():
    assert encode_jsonl([]) == b""
    assert decode_jsonl_gzip(encode_jsonl_gzip([])) == []


def test_group_records_keeps_order():
    records = [rec(0, "a"), rec(1, "b"), rec(2, "a"), rec(3, "c"), rec(4, "b")]
    groups = group_records(records, lambda r: r.stream)
    assert list(groups) == ["a", "b", "c"]
    assert [r.payload["n"] for r in groups["a"]] == [0, 2]
    assert [r.payload["n"] for r in groups["b"]] == [1, 4]
    assert group_records([], lambda r: r.stream) == {}
