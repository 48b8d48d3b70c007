import gzip

import pytest

from sluiceway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from sluiceway.http.body import check_media_type, decode_content, parse_events, parse_events_raw


def test_single_object():
    assert parse_events(b'{"a":1}', False) == [{"a": 1}]


def test_array_of_objects():
    assert parse_events(b'[{"a":1},{"b":2}]', False) == [{"a": 1}, {"b": 2}]


def test_ndjson_skips_blank_lines():
    assert parse_events(b'{"a":1}\n\n{"b":2}\n', True) == [{"a": 1}, {"b": 2}]


def test_ndjson_sent_as_json_is_accepted():
    assert parse_events(b'{"a":1}\n{"b":2}\n', False) == [{"a": 1}, {"b": 2}]


def test_malformed_json_names_offset():
    with pytest.raises(BadRequest) as e:
        parse_events(b'{"a": tru}', False)
    assert "line 1" in e.value.detail and "offset" in e.value.detail


def test_malformed_ndjson_names_line():
    with pytest.raises(BadRequest) as e:
        parse_events(b'{"a":1}\n{"b":\n', True)
    assert "line 2" in e.value.detail


@pytest.mark.parametrize("body", [b'"x"', b"1", b"null", b"[1]", b'[{"a":1}, 2]'])
def test_non_object_refused(body):
    with pytest.raises(BadRequest):
        parse_events(body, False)


def test_ndjson_non_object_line():
    with pytest.raises(BadRequest, match="line 2 is a array"):
        parse_events(b'{"a":1}\n[1]\n', True)


def test_ndjson_raw_lines_are_stripped_and_kept():
    body = b' {"a":1}\r\n\n\t{"b":[2]}  \n'
    assert parse_events_raw(body, True) == [({"a": 1}, b'{"a":1}'), ({"b": [2]}, b'{"b":[2]}')]
    assert parse_events_raw(bytearray(body), True) == [({"a": 1}, b'{"a":1}'), ({"b": [2]}, b'{"b":[2]}')]


@pytest.mark.parametrize("probe", [False, True])
def test_ndjson_line_holding_a_cr_is_re_encoded(probe):
    """A CR inside a line is JSON whitespace, but readers of universal newlines would split
    the line there: such a line is re-encoded (its text None), every value kept; lines ending
    in CRLF are kept as sent."""
    body = b'{"a":1}\r\n{"b"\r:\r1e999,"n":123456789012345678901234567890}\r\n{"c":3}\n'
    got = probed(body) if probe else parse_events_raw(body, True)
    assert [raw for _, raw in got] == [b'{"a":1}', None, b'{"c":3}']
    assert got[1][0] == {"b": float("inf"), "n": 123456789012345678901234567890}
    from sluiceway.http.ingest import encode_events

    [_, entry, _] = encode_events(got, tenant="t", stream="s", source="http",
                                  received_at="2026-01-01T00:00:00Z", idempotency_key=None)
    assert b"\r" not in entry and entry.endswith(b'"payload":{"b":1e999,"n":123456789012345678901234567890}}')


def test_ndjson_lines_are_parsed_one_by_one():
    # Joined, these lines would be valid JSON holding three objects; on their own they are not.
    with pytest.raises(BadRequest, match="on line 1,"):
        parse_events(b'{"a":[{}\n{}]}\n{},{}\n', True)
    with pytest.raises(BadRequest, match="on line 3,"):
        parse_events(b'{"a":1}\n\n{"b":\n{"c":3}\n', True)


def probed(body: bytes):
    from sluiceway.http.ingest import _EVENT_TIME

    return parse_events_raw(body, True, _EVENT_TIME)


def test_ndjson_probe_reads_only_the_time_fields_and_keeps_lines():
    body = b' {"timestamp":"2025-01-02T03:04:05Z","a":{"b":[1,2.5,null]}}\r\n\n{"time":7,"event_time":"x"}\n'
    (p1, l1), (p2, l2) = probed(body)
    assert (p1.timestamp, p1.event_time, l1) == ("2025-01-02T03:04:05Z", None, body.split(b"\r")[0][1:])
    assert (p2.time, p2.event_time, l2) == (7, "x", b'{"time":7,"event_time":"x"}')


@pytest.mark.parametrize("body, message", [
    (b'{"a":1}\n{"b":\n', "on line 2"),               # malformed
    (b'{"a":1}\n[1]\n', "line 2 is a array"),          # not an object
    (b'{"a":1}\n{"b":"\xff"}\n', "on line 2"),        # not UTF-8 inside a skipped string
    (b'{"a":1}\n{"b":"\\ud800"}\n', "on line 2"),    # lone surrogate escape
    (b'{"a":1}{"b":2}\n', "on line 1"),                # two objects on one line
    (b"\n\n", "empty body"),
])
def test_ndjson_probe_refuses_what_the_full_parse_refuses(body, message):
    with pytest.raises(BadRequest, match=message):
        probed(body)


def test_huge_number_is_accepted_and_its_record_still_decodes():
    """1e999 is valid JSON: accepted as sent; orjson refuses it, so the journal entry's
    decoder falls back to the standard library (inf) instead of losing the record."""
    from sluiceway.http.ingest import encode_events
    from sluiceway.record import decode_doc

    events = probed(b'{"n":1e999,"big":123456789012345678901234567890}\n')
    [entry] = encode_events(events, tenant="t", stream="s", source="http",
                            received_at="2026-01-01T00:00:00Z", idempotency_key=None)
    doc = decode_doc(entry)
    assert doc["payload"]["n"] == float("inf") and doc["payload"]["big"] == 123456789012345678901234567890


@pytest.mark.parametrize("body", [b"", b"[]", b"\n\n"])
def test_empty_refused(body):
    with pytest.raises(BadRequest):
        parse_events(body, body != b"[]" and b"\n" in body)


def test_media_types():
    assert check_media_type("application/x-ndjson") is True
    assert check_media_type("application/json") is False
    assert check_media_type("application/x-www-form-urlencoded") is False
    assert check_media_type("application/vnd.api+json") is False
    with pytest.raises(UnsupportedMediaType):
        check_media_type("application/xml")


def test_gzip_roundtrip():
    assert decode_content(gzip.compress(b'{"a":1}'), "gzip", 100) == b'{"a":1}'


def test_gzip_bomb_refused():
    bomb = gzip.compress(b"\0" * (50 * 1024 * 1024))
    assert len(bomb) < 100_000
    with pytest.raises(PayloadTooLarge):
        decode_content(bomb, "gzip", 1024 * 1024)


def test_bad_gzip_is_400():
    with pytest.raises(BadRequest):
        decode_content(b"not gzip at all", "gzip", 1000)


def test_truncated_gzip_is_400():
    with pytest.raises(BadRequest):
        decode_content(gzip.compress(b'{"a":1}' * 100)[:-10], "gzip", 100000)


def test_unknown_encoding_415():
    with pytest.raises(UnsupportedMediaType):
        decode_content(b"x", "br", 100)
