"""Decoding journal entries: ``decode_head`` (envelope, payload kept as text) refuses what
``decode_doc`` (the whole document) refuses."""

import orjson
import pytest

from sluiceway.record import Record, decode_doc, decode_head, new_id, utcnow


def test_head_of_a_record():
    r = Record(id=new_id(), tenant="acme", stream="usage", source="http", received_at=utcnow(),
               payload={"event": "startup", "n": [1, 2]}, idempotency_key="k1")
    h = decode_head(r.encode())
    doc = decode_doc(r.encode())
    assert (h.id, h.tenant, h.stream, h.source, h.received_at, h.event_time, h.idempotency_key) == (
        doc["id"], doc["tenant"], doc["stream"], doc["source"], doc["received_at"], None, "k1")
    assert orjson.loads(bytes(h.payload)) == r.payload and bytes(h.attachments) == b"[]"


@pytest.mark.parametrize("data", [
    b"not json", b"[1, 2]", b'{"id": "x"}', b'{"id": 1, "tenant": "t", "stream": "s", "received_at": "t"}',
    b'{"id": "x", "tenant": "t", "stream": "s", "received_at": "t", "payload": {"a": 1}} trailing',
    b'{"id": "x", "tenant": "t", "stream": "s", "received_at": "t", "payload": {"a": "\xff"}}',
    b'{"id": "x", "tenant": "t", "stream": "s", "received_at": "t", "payload": {"a": }}',
])
def test_both_decoders_refuse_what_is_not_a_record(data):
    assert decode_doc(data) is None
    assert decode_head(data) is None


def test_numbers_orjson_refuses_are_kept():
    data = b'{"id": "x", "tenant": "t", "stream": "s", "received_at": "t", "payload": {"n": 1e999}}'
    assert bytes(decode_head(data).payload) == b'{"n": 1e999}'
    assert decode_doc(data)["payload"] == {"n": float("inf")}
