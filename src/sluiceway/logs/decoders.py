"""Streaming file decoders: bytes in, chunk by chunk; items (or bad lines) out.

A file is two stages, both incremental, so a 1 GB gzip file never sits whole in memory:

1. ``Decompressor``: ``gzip`` (``zlib.decompressobj``, multi-member files too) or ``none``;
   ``feed(chunk)`` yields pieces of at most ``PIECE`` bytes (a gzip bomb inflates piece by
   piece, not all at once). A corrupt stream raises ``DecodeError``: the *file* fails.
2. A ``Decoder`` turns pieces into ``Item(line, value)`` or ``Bad(line, error)``:

   - ``ndjson``: one JSON value per line (blank lines skipped); ``line`` is the 1-based
     line number. A line over ``max_item_bytes`` is a bad line (skipped, not buffered).
   - ``json_array``: one top-level array, streamed element by element; ``line`` is the
     1-based element number. Elements are parsed with the json module's C ``raw_decode``
     on a text buffer; an element that fails to parse is delimited by a small scanner
     (strings, escapes, bracket depth) and recorded as bad, and decoding goes on after it.
     Fast path (``bulk``): the run of whole objects up to the buffer's last ``},{`` is
     parsed by one ``orjson.loads("[" + run + "]")``. JSON parses left to right, so that
     succeeds only if the cut really falls between two elements; if it fails (a bad
     element, a cut inside an element, NaN, lone surrogates, nesting orjson refuses) that
     run is decoded element by element as above. Runs holding a number orjson would read
     other than ``json`` (an integer beyond 64 bits: orjson makes it a float) skip the
     fast path, so both paths give the same values.
   - ``json_object``: the whole file is one JSON value (bounded by ``max_item_bytes``).
   - ``auto``: ``[`` first → ``json_array``; otherwise ``ndjson`` if the first line is a
     complete JSON value, else ``json_object`` (one pretty-printed object).

``decoder_for(name, key)`` picks by name or, for ``auto``, by the key's extension
(``.ndjson``/``.jsonl``/``.log`` → ndjson, ``.json`` → sniffed); ``compression_for``
likewise (``.gz`` → gzip; ``auto`` also recognises the gzip magic bytes).
"""

from __future__ import annotations

import abc
import codecs
import json
import zlib
from collections.abc import Iterator
from typing import Any, Literal, NamedTuple

import orjson

PIECE = 1024 * 1024  # most decompressed bytes handed on at once
DecoderName = Literal["auto", "ndjson", "json_array", "json_object"]
CompressionName = Literal["auto", "gzip", "none"]
DECODERS = ("auto", "ndjson", "json_array", "json_object")
_NDJSON_EXT = (".ndjson", ".jsonl", ".log", ".ndjson.gz", ".jsonl.gz", ".log.gz")


class DecodeError(Exception):
    """The file as a whole cannot be decoded (corrupt gzip, not an array, too large)."""


class Item(NamedTuple):
    line: int
    value: Any


class Bad(NamedTuple):
    line: int
    error: str


Out = Item | Bad


# -- decompression ------------------------------------------------------------------------

class Decompressor:
    """``gzip`` (zlib with a gzip header; concatenated members) or ``none``."""

    def __init__(self, compression: Literal["gzip", "none"]):
        self.gzip = compression == "gzip"
        self._z = zlib.decompressobj(wbits=31) if self.gzip else None
        self._seen = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not self.gzip:
            for i in range(0, len(data), PIECE):
                yield data[i:i + PIECE]
            return
        while data:
            z = self._z
            assert z is not None
            try:
                out = z.decompress(data, PIECE)
            except zlib.error as e:
                raise DecodeError(f"corrupt gzip data: {e}") from None
            self._seen = True
            if out:
                yield out
            if z.unconsumed_tail:
                data = z.unconsumed_tail
            elif z.eof:
                data = z.unused_data
                if data:
                    self._z = zlib.decompressobj(wbits=31)  # another gzip member
            else:
                data = b""

    def finish(self) -> None:
        if self.gzip and (not self._seen or not self._z.eof):  # type: ignore[union-attr]
            raise DecodeError("truncated gzip data (no end of stream)")


# -- decoders -----------------------------------------------------------------------------

class Decoder(abc.ABC):
    def __init__(self, max_item_bytes: int = 16 * 1024 * 1024):
        self.max_item_bytes = max_item_bytes

    @abc.abstractmethod
    def feed(self, data: bytes) -> list[Out]:
        """Items (or bad lines) completed by ``data``."""

    @abc.abstractmethod
    def finish(self) -> list[Out]:
        """Whatever the end of the input completes."""


def _parse_line(line: bytes, n: int) -> Out:
    try:
        return Item(n, orjson.loads(line))
    except orjson.JSONDecodeError as e:
        return Bad(n, f"invalid JSON: {e}")


class NdjsonDecoder(Decoder):
    def __init__(self, max_item_bytes: int = 16 * 1024 * 1024):
        super().__init__(max_item_bytes)
        self._buf = bytearray()
        self._line = 0
        self._skipping = False  # inside an over-long line

    def _one(self, line: bytes, out: list[Out]) -> None:
        self._line += 1
        if self._skipping:
            self._skipping = False
            out.append(Bad(self._line, f"line longer than {self.max_item_bytes} bytes"))
        elif line.strip():
            out.append(_parse_line(line, self._line))

    def feed(self, data: bytes) -> list[Out]:
        out: list[Out] = []
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            if self._buf:
                self._buf += data[start:nl]
                line, self._buf = bytes(self._buf), bytearray()
            else:
                line = data[start:nl]
            self._one(line, out)
            start = nl + 1
        if not self._skipping:
            self._buf += data[start:]
            if len(self._buf) > self.max_item_bytes:
                self._buf, self._skipping = bytearray(), True
        return out

    def finish(self) -> list[Out]:
        out: list[Out] = []
        if self._buf or self._skipping:
            line, self._buf = bytes(self._buf), bytearray()
            self._one(line, out)
        return out


_WS = " \t\r\n"
_BULK_MIN = 16 * 1024  # text worth a fast-path attempt
_BULK_TRIES = 2  # cut candidates tried before decoding element by element
_DIGITS = bytes.maketrans(b"0123456789", b"0" * 10)
_BIG_INTS = (b"0" * 20, b"-" + b"0" * 19)  # (with digits as 0) may be an integer orjson makes a float


def scan_value_end(text: str, i: int) -> int | None:
    """Index just past the value starting at ``text[i]`` inside an array: the first ``,`` or
    ``]`` at depth 0 outside strings (``None`` if the text ends first). Used only to skip
    a bad element, so it is forgiving rather than strict."""
    depth = 0
    in_str = esc = False
    n = len(text)
    while i < n:
        c = text[i]
        if in_str:
            if esc:
                esc = False
            elif c == "\\":
                esc = True
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c in "[{":
            depth += 1
        elif c in "]}":
            if depth == 0:
                return i
            depth -= 1
        elif c == "," and depth == 0:
            return i
        i += 1
    return None


def _past_bad(buf: str, end: int | None) -> int:
    """Where decoding goes on after a bad element that ``scan_value_end`` ended at ``end``: a
    stray ``}`` there belongs to the bad element (else the scan would find it again and again)."""
    if end is None:
        return len(buf)
    return end + 1 if buf[end] == "}" else end


class JsonArrayDecoder(Decoder):
    """One top-level JSON array, element by element (see the module docstring)."""

    def __init__(self, max_item_bytes: int = 16 * 1024 * 1024):
        super().__init__(max_item_bytes)
        self._text = codecs.getincrementaldecoder("utf-8")("replace")
        self._buf = ""
        self._pos = 0
        self._state = "start"  # start → value → comma → done
        self._n = 0
        self._raw = json.JSONDecoder().raw_decode
        self._retry_at = 0  # retry an incomplete element only once the buffer has grown
        self._slow_until = 0  # buffer position up to which the fast path failed

    def feed(self, data: bytes) -> list[Out]:
        self._slow_until -= self._pos
        self._buf = self._buf[self._pos:] + self._text.decode(data)
        self._pos = 0
        return self._run(final=False)

    def finish(self) -> list[Out]:
        self._slow_until -= self._pos
        self._buf = self._buf[self._pos:] + self._text.decode(b"", final=True)
        self._pos = 0
        out = self._run(final=True)
        if self._state == "start":
            raise DecodeError("empty file: expected a JSON array")
        if self._state != "done":
            out.append(Bad(self._n + 1, "unterminated JSON array (file truncated?)"))
        return out

    def _skip_ws(self) -> None:
        buf, i = self._buf, self._pos
        while i < len(buf) and buf[i] in _WS:
            i += 1
        self._pos = i

    def _bulk(self, buf: str, i: int, out: list[Out]) -> bool:
        """The fast path from ``buf[i]``, an element's start (see the module docstring)."""
        if len(buf) - i < _BULK_MIN or i < self._slow_until:
            return False
        end = len(buf)
        for _ in range(_BULK_TRIES):
            cut = buf.rfind("},{", i, end)
            if cut < 0:  # none (left): element by element up to there
                self._slow_until = end
                return False
            data = ("[" + buf[i:cut + 1] + "]").encode("utf-8", "surrogatepass")
            digits = data.translate(_DIGITS)
            if any(big in digits for big in _BIG_INTS):
                break
            try:
                values = orjson.loads(data)
            except orjson.JSONDecodeError:
                end = cut + 1
                continue
            n = self._n
            out.extend([Item(n + k, v) for k, v in enumerate(values, 1)])
            self._n = n + len(values)
            self._pos = cut + 2  # the next element's "{"
            return True
        self._slow_until = cut + 1
        return False

    def _run(self, final: bool) -> list[Out]:
        out: list[Out] = []
        buf = self._buf
        while True:
            self._skip_ws()
            i = self._pos
            if i >= len(buf):
                return out
            c = buf[i]
            if self._state == "done":
                if not c.isspace():
                    raise DecodeError("data after the end of the JSON array")
            if self._state == "start":
                if c != "[":
                    raise DecodeError(f"expected a JSON array, found {c!r}")
                self._pos, self._state = i + 1, "value"
                continue
            if self._state == "comma":
                if c == ",":
                    self._pos, self._state = i + 1, "value"
                    continue
                if c == "]":
                    self._pos, self._state = i + 1, "done"
                    continue
                end = scan_value_end(buf, i)  # garbage between elements: one bad element
                if end is None and not final:
                    return out
                self._n += 1
                out.append(Bad(self._n, "expected ',' or ']' between array elements"))
                self._pos = _past_bad(buf, end)
                continue
            # state == "value"
            if c == "]" and self._n == 0:
                self._pos, self._state = i + 1, "done"
                continue
            if not final and len(buf) < self._retry_at:
                return out  # this element was incomplete: wait for more text
            if self._bulk(buf, i, out):
                continue
            try:
                value, end = self._raw(buf, i)
            except json.JSONDecodeError as e:
                stop = scan_value_end(buf, i)
                if stop is None and not final:
                    if len(buf) - i > self.max_item_bytes:
                        raise DecodeError(f"array element larger than {self.max_item_bytes} bytes") from None
                    # the element starts the buffer after the next feed: retry once it doubled
                    self._retry_at = (len(buf) - i) + max(len(buf) - i, 64 * 1024)
                    return out
                self._n += 1
                out.append(Bad(self._n, f"invalid JSON: {e.msg}"))
                self._pos, self._state = _past_bad(buf, stop), "comma"
                continue
            if end >= len(buf) and not final and isinstance(value, (int, float)):
                # a number at the end of the buffer may continue in the next chunk
                self._retry_at = len(buf) - i + 1
                return out
            self._retry_at = 0
            self._n += 1
            out.append(Item(self._n, value))
            if buf.startswith(",", end):  # the common case: the next element follows at once
                self._pos = end + 1
            else:
                self._pos, self._state = end, "comma"


class JsonObjectDecoder(Decoder):
    """The whole file is one JSON value."""

    def __init__(self, max_item_bytes: int = 16 * 1024 * 1024):
        super().__init__(max_item_bytes)
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Out]:
        self._buf += data
        if len(self._buf) > self.max_item_bytes:
            raise DecodeError(f"JSON document larger than {self.max_item_bytes} bytes")
        return []

    def finish(self) -> list[Out]:
        if not bytes(self._buf).strip():
            return []
        return [_parse_line(bytes(self._buf), 1)]


class AutoDecoder(Decoder):
    """Sniffs the first bytes: an array, NDJSON or a single (pretty-printed) object."""

    def __init__(self, max_item_bytes: int = 16 * 1024 * 1024):
        super().__init__(max_item_bytes)
        self._head = bytearray()
        self._inner: Decoder | None = None

    def _choose(self, final: bool) -> Decoder | None:
        head = bytes(self._head).lstrip()
        if not head:
            return NdjsonDecoder(self.max_item_bytes) if final else None
        if head[:1] == b"[":
            return JsonArrayDecoder(self.max_item_bytes)
        nl = head.find(b"\n")
        if nl < 0 and not final and len(head) <= self.max_item_bytes:
            return None
        first = head if nl < 0 else head[:nl]
        try:
            orjson.loads(first)
            return NdjsonDecoder(self.max_item_bytes)
        except orjson.JSONDecodeError:
            return JsonObjectDecoder(self.max_item_bytes) if head[:1] == b"{" else NdjsonDecoder(self.max_item_bytes)

    def feed(self, data: bytes) -> list[Out]:
        if self._inner is not None:
            return self._inner.feed(data)
        self._head += data
        self._inner = self._choose(final=False)
        if self._inner is None:
            return []
        head, self._head = bytes(self._head), bytearray()
        return self._inner.feed(head)

    def finish(self) -> list[Out]:
        if self._inner is None:
            self._inner = self._choose(final=True)
            assert self._inner is not None
            head, self._head = bytes(self._head), bytearray()
            return self._inner.feed(head) + self._inner.finish()
        return self._inner.finish()


_CLASSES: dict[str, type[Decoder]] = {
    "auto": AutoDecoder, "ndjson": NdjsonDecoder, "json_array": JsonArrayDecoder, "json_object": JsonObjectDecoder,
}


def _base(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    return name[:-3] if name.endswith(".gz") else name


def decoder_for(name: str, key: str, max_item_bytes: int = 16 * 1024 * 1024) -> Decoder:
    """The decoder ``name`` names; ``auto``: by the key's extension, else sniffed."""
    if name == "auto" and _base(key).endswith(_NDJSON_EXT):
        name = "ndjson"
    try:
        return _CLASSES[name](max_item_bytes)
    except KeyError:
        raise ValueError(f"unknown decoder {name!r}; valid decoders: {', '.join(DECODERS)}") from None


def compression_for(name: str, key: str, head: bytes) -> Literal["gzip", "none"]:
    """``gzip``/``none`` as configured; ``auto``: ``.gz`` keys and the gzip magic bytes."""
    if name in ("gzip", "none"):
        return name  # type: ignore[return-value]
    return "gzip" if key.lower().endswith(".gz") or head[:2] == b"\x1f\x8b" else "none"


class FileDecoder:
    """Decompression and decoding together: ``feed(chunk)`` / ``finish()`` yield lists of
    ``Item``/``Bad``, at most about ``PIECE`` decompressed bytes' worth at a time."""

    def __init__(self, key: str, decoder: str = "auto", compression: str = "auto",
                 max_item_bytes: int = 16 * 1024 * 1024):
        self.key = key
        self.compression = compression
        self.decoder = decoder_for(decoder, key, max_item_bytes)
        self._z: Decompressor | None = None
        self._head = b""  # the first bytes, until there are enough to sniff gzip's magic

    def feed(self, chunk: bytes) -> Iterator[list[Out]]:
        if self._z is None:
            chunk = self._head + chunk
            if len(chunk) < 2:
                self._head = chunk
                return
            self._head = b""
            self._z = Decompressor(compression_for(self.compression, self.key, chunk))
        for piece in self._z.feed(chunk):
            yield self.decoder.feed(piece)

    def finish(self) -> list[Out]:
        out: list[Out] = []
        if self._z is None:  # fewer than two bytes in the whole file
            self._z = Decompressor(compression_for(self.compression, self.key, self._head))
            if self._z.gzip:
                raise DecodeError("empty file: no gzip data")
            out = [o for piece in self._z.feed(self._head) for o in self.decoder.feed(piece)]
        self._z.finish()
        return out + self.decoder.finish()
