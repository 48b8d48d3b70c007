import gzip
import io
import json
import zlib

import orjson
import pytest

from sluiceway.logs import decoders
from sluiceway.logs.decoders import (
    PIECE, Bad, DecodeError, Decompressor, FileDecoder, Item, JsonArrayDecoder, NdjsonDecoder, decoder_for,
)


def decode(data: bytes, key: str = "f.json", chunk: int = 7, **kw) -> list:
    dec = FileDecoder(key, **kw)
    out = []
    for i in range(0, len(data), chunk):
        for items in dec.feed(data[i:i + chunk]):
            out += items
    return out + dec.finish()


RECORDS = [{"level": 30, "msg": f"m{i}", "nested": {"a": [1, 2, {"b": "x,]}\"y"}]}, "n": i * 1.5} for i in range(50)]


@pytest.mark.parametrize("chunk", [1, 3, 64, 100_000])
def test_array_streamed_in_any_chunking(chunk):
    data = json.dumps(RECORDS, indent=1).encode()
    out = decode(data, chunk=chunk)
    assert out == [Item(i + 1, r) for i, r in enumerate(RECORDS)]


@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_gzip_array_and_ndjson(chunk):
    gz = gzip.compress(orjson.dumps(RECORDS))
    assert [i.value for i in decode(gz, "x.json.gz", chunk=chunk)] == RECORDS
    nd = b"\n".join(orjson.dumps(r) for r in RECORDS) + b"\n"
    assert [i.value for i in decode(gzip.compress(nd), "x.ndjson.gz", chunk=chunk)] == RECORDS
    # plain, and gzip recognised by its magic bytes without the extension
    assert [i.value for i in decode(nd, "x.jsonl", chunk=chunk)] == RECORDS
    assert [i.value for i in decode(gzip.compress(nd), "x.log", chunk=chunk)] == RECORDS


def test_auto_sniffs_ndjson_array_and_single_object():
    nd = b'{"a":1}\n{"a":2}\n'
    assert decode(nd, "x.json") == [Item(1, {"a": 1}), Item(2, {"a": 2})]
    assert decode(b' [ {"a":1} , 2 ] ', "x.json") == [Item(1, {"a": 1}), Item(2, 2)]
    pretty = json.dumps({"a": 1, "b": [1, 2]}, indent=2).encode()
    assert decode(pretty, "x.json") == [Item(1, {"a": 1, "b": [1, 2]})]
    assert decode(b"", "x.json") == []
    assert decode(b"[]", "x.json") == []
    assert decode(pretty, "x.anything", decoder="json_object") == [Item(1, {"a": 1, "b": [1, 2]})]


def test_bad_lines_are_recorded_and_the_rest_decoded():
    nd = b'{"a":1}\nnot json\n\n{"a":3}\n{"a":\n'
    out = decode(nd, "x.ndjson")
    assert out[0] == Item(1, {"a": 1}) and out[2] == Item(4, {"a": 3})
    assert isinstance(out[1], Bad) and out[1].line == 2
    assert isinstance(out[3], Bad) and out[3].line == 5


def test_bad_array_elements_are_skipped():
    data = b'[{"a":1}, {"a": tru}, {"s": "]"}, nope, [1,2], {"a":4}]'
    for chunk in (1, 4, 1000):
        out = decode(data, "x.json", chunk=chunk, decoder="json_array")
        good = [(o.line, o.value) for o in out if isinstance(o, Item)]
        bad = [o.line for o in out if isinstance(o, Bad)]
        assert good == [(1, {"a": 1}), (3, {"s": "]"}), (5, [1, 2]), (6, {"a": 4})], chunk
        assert bad == [2, 4], chunk


@pytest.mark.parametrize("data, lines", [
    (b'[\x00}, {"a":2}]', [None, {"a": 2}]),
    (b'[{"a":1} }, {"a":2}]', [{"a": 1}, None, {"a": 2}]),
    (b'[{"a":1}, }}, {"a":2}]', [{"a": 1}, None, None, {"a": 2}]),
    (b'[{"a":1}}{"a":2}]', [{"a": 1}, None, None]),
])
def test_stray_closing_braces_are_bad_elements_not_a_hang(data, lines):
    """A '}' where an element or a comma should be was found again at the same place by the
    scan that skips a bad element: the decoder looped forever on such a file (found by
    fuzzing). It is now part of the bad element (None: a Bad entry)."""
    for chunk in (1, 4, 1000):
        out = decode(data, "x.json", chunk=chunk, decoder="json_array")
        assert [o.value if isinstance(o, Item) else None for o in out] == lines, chunk
        assert [o.line for o in out] == list(range(1, len(lines) + 1)), chunk


def test_truncated_array_reports_a_bad_line_and_keeps_the_rest():
    out = decode(b'[{"a":1},{"a":2},{"a"', "x.json")
    assert [o.value for o in out if isinstance(o, Item)] == [{"a": 1}, {"a": 2}]
    assert any(isinstance(o, Bad) for o in out)


def test_whole_file_errors():
    with pytest.raises(DecodeError, match="gzip"):
        decode(b"\x1f\x8b\x08\x00garbage-garbage-garbage", "x.json.gz")
    with pytest.raises(DecodeError, match="truncated gzip"):
        decode(gzip.compress(orjson.dumps(RECORDS))[:-30], "x.json.gz", chunk=1000)
    with pytest.raises(DecodeError, match="expected a JSON array"):
        decode(b'{"a":1}', "x.json", decoder="json_array")
    with pytest.raises(DecodeError, match="empty file"):
        decode(b"", "x.json.gz")


def test_number_split_across_chunks():
    assert decode(b"[12345, 678]", chunk=3) == [Item(1, 12345), Item(2, 678)]


def test_multi_member_gzip():
    data = gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"a":2}\n')
    assert decode(data, "x.ndjson.gz") == [Item(1, {"a": 1}), Item(2, {"a": 2})]


def test_overlong_line_is_bad_not_buffered():
    dec = NdjsonDecoder(max_item_bytes=100)
    out = dec.feed(b'{"a":1}\n' + b"x" * 1000) + dec.feed(b"y" * 1000 + b'\n{"a":2}\n') + dec.finish()
    assert out[0] == Item(1, {"a": 1}) and isinstance(out[1], Bad) and out[2] == Item(3, {"a": 2})
    assert len(dec._buf) == 0


def test_decompressor_hands_on_bounded_pieces():
    """A highly compressible 64 MiB stream inflates piece by piece, never whole."""
    z = zlib.compressobj(wbits=31)
    body = z.compress(b"[" + b"0," * (32 * 1024 * 1024) + b"0]") + z.flush()
    d = Decompressor("gzip")
    sizes = [len(p) for p in d.feed(body)]
    d.finish()
    assert sum(sizes) == 64 * 1024 * 1024 + 3 and max(sizes) <= PIECE


def test_large_gzip_array_streams_chunk_by_chunk():
    """~40 MB of records, fed in 64 KiB compressed chunks: items come out as chunks go in,
    and the decoder's buffer never holds more than a few pieces."""
    n = 200_000
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1) as g:
        g.write(b"[")
        for i in range(n):
            g.write(orjson.dumps({"level": 30, "time": 1743532098671 + i, "msg": "x" * 150, "i": i}))
            if i < n - 1:
                g.write(b",")
        g.write(b"]")
    data = buf.getvalue()
    dec = FileDecoder("big.json.gz")
    seen = 0
    peak = 0
    first_items_at = None
    for k, i in enumerate(range(0, len(data), 64 * 1024)):
        for items in dec.feed(data[i:i + 64 * 1024]):
            seen += len(items)
            if items and first_items_at is None:
                first_items_at = k
        peak = max(peak, len(dec.decoder._inner._buf))
    seen += len(dec.finish())
    assert seen == n
    assert first_items_at == 0  # records flow from the first chunk on
    assert peak <= 3 * PIECE


def test_unknown_decoder_name():
    with pytest.raises(ValueError, match="valid decoders"):
        decoder_for("csv", "x")
    assert isinstance(decoder_for("auto", "a/b.JSONL.gz"), NdjsonDecoder)
    assert isinstance(decoder_for("json_array", "a/b.txt"), JsonArrayDecoder)


def _decode_all(data: bytes, chunk: int) -> list:
    dec = JsonArrayDecoder()
    out = []
    for i in range(0, len(data), chunk):
        out += dec.feed(data[i:i + chunk])
    return out + dec.finish()


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_fast_path_gives_what_element_by_element_gives(monkeypatch, chunk):
    """Runs of whole objects go through orjson; anything orjson would read otherwise (big
    integers, Infinity, lone surrogates, bad elements, cuts inside nested arrays of objects) must
    come out exactly as the json module reads it, element by element."""
    elements = []
    for i in range(300):
        e = {"i": i, "msg": f"line {i}", "t": 1743532098671 + i, "f": i / 7, "nested": {"a": [1, {"b": None}]}}
        if i % 50 == 7:
            e["items"] = [{"x": 1}, {"y": 2}, {"z": [{"deep": True}]}]  # '},{' inside an element
        elements.append(json.dumps(e, separators=(",", ":")))
    elements[40] = '{"big":18446744073709551616}'  # beyond 64 bits: orjson would make it a float
    elements[41] = '{"neg":-9223372036854775809}'
    elements[90] = '{"inf":Infinity}'
    elements[120] = '{"s":"\\ud800"}'  # a lone surrogate
    elements[150] = '{"broken":}'
    elements[200] = '{"id":"12345678901234567890123"}'  # digits in a string: just the slow path
    data = ("[" + ",".join(elements) + "]").encode()
    monkeypatch.setattr(decoders, "_BULK_MIN", 1 << 62)  # element by element
    want = _decode_all(data, chunk)
    assert [o.line for o in want] == list(range(1, 301))
    assert isinstance(want[150], Bad) and want[40].value["big"] == 18446744073709551616
    monkeypatch.setattr(decoders, "_BULK_MIN", 64)
    bulk_calls = []
    real = JsonArrayDecoder._bulk

    def spy(self, buf, i, out):
        ok = real(self, buf, i, out)
        bulk_calls.append(ok)
        return ok

    monkeypatch.setattr(JsonArrayDecoder, "_bulk", spy)
    got = _decode_all(data, chunk)
    assert got == want
    assert [type(v) for o in got if isinstance(o, Item) for v in o.value.values()] == \
        [type(v) for o in want if isinstance(o, Item) for v in o.value.values()]
    if chunk == 1000:  # (in one 1 MiB piece, the big integers send the whole piece the slow way)
        assert any(bulk_calls)  # the fast path was taken
