"""Decoding journal entries: ``decode_head`` (envelope, payload kept as text) refuses what
``decode_doc`` (the whole document) refuses."""

import orjson
import pytest

from sluiceway.record import MAX_DEPTH, Record, decode_doc, decode_head, nesting_depth, new_id, too_deep, utcnow


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


@pytest.mark.parametrize("text, depth", [
    (b"1", 0), (b'"[{"', 0), (b"{}", 1), (b"[[], [[]]]", 3), (b'{"a": [1, {"b": "}}]]\\"}"}]}', 3),
    (b'[{"a\\"[": ["\\\\", {"": []}]}]', 5),
])
def test_nesting_depth_skips_strings(text, depth):
    assert orjson.loads(text) is not None or text == b"1"
    assert nesting_depth(text) == depth


def test_too_deep_at_the_limit():
    def nested(n: int) -> bytes:
        return b"[" * n + b"]" * n
    assert not too_deep(nested(MAX_DEPTH)) and too_deep(nested(MAX_DEPTH + 1))
    assert not too_deep(nested(MAX_DEPTH - 1), within=1) and too_deep(nested(MAX_DEPTH), within=1)
    assert not too_deep(b"[" + b"[1]," * 5000 + b"1]")  # many brackets, shallow
    assert not too_deep(b'["' + b"[" * 1000 + b'"]')  # brackets in a string


@pytest.mark.parametrize("levels", [990, 1000, 1100, 5000])
def test_records_nested_past_the_decoders_are_refused_not_raised(levels):
    """A journal entry too deep for msgspec or the json module is "not a record" (delivery
    dead-letters it) rather than a RecursionError that would stop the delivery loop. Receivers
    refuse such events; this guards the journal's readers against anything else."""
    data = (b'{"id": "x", "tenant": "t", "stream": "s", "received_at": "t", "payload": '
            + b'{"a":' * levels + b"1" + b"}" * levels + b"}")
    head, doc = decode_head(data), decode_doc(data)  # neither raises
    if levels > 1024:  # past every decoder here (orjson reads 1,024 levels)
        assert head is None and doc is None
