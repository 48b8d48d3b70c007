"""Reading and parsing request bodies safely: size limits (also after decompression),
gzip, JSON / JSON array / NDJSON with error messages that name the line or offset."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import orjson

from sluiceway.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from sluiceway.record import MAX_DEPTH, loads_exact

JSON_TYPES = frozenset({
    "", "application/json", "text/json", "text/plain",
    "application/x-www-form-urlencoded",  # curl -d default; the body is still JSON
})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})


class ClientDisconnected(Exception):
    pass


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_media_type(mt: str) -> bool:
    """True for NDJSON, False for JSON; 415 for anything else."""
    if mt in NDJSON_TYPES:
        return True
    if mt in JSON_TYPES or mt.endswith("+json"):
        return False
    raise UnsupportedMediaType(
        f"content type {mt!r} is not supported; send application/json or application/x-ndjson")


async def body_chunks(receive: Any) -> AsyncIterator[bytes]:
    """The request body's non-empty chunks as they arrive (for bodies streamed somewhere
    else than memory); ``ClientDisconnected`` if the client goes away first."""
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = msg.get("body", b"")
        if chunk:
            yield chunk
        if not msg.get("more_body"):
            return


def content_length(headers: dict[bytes, bytes]) -> int | None:
    """The Content-Length header as a number (None if absent); 400 if it is not one."""
    cl = headers.get(b"content-length")
    if not cl:
        return None
    try:
        return int(cl)
    except ValueError:
        raise BadRequest("Content-Length is not a number") from None


async def read_body(receive: Any, limit: int, content_length: int | None) -> bytes:
    if content_length is not None and content_length > limit:
        raise PayloadTooLarge(f"body of {content_length} bytes exceeds the limit of {limit} bytes")
    first = await receive()
    if first["type"] == "http.disconnect":
        raise ClientDisconnected()
    body = first.get("body", b"")
    if not first.get("more_body"):
        if len(body) > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        return body
    chunks = [body]
    size = len(body)
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
        if not msg.get("more_body"):
            return b"".join(chunks)


def decode_content(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding (gzip/deflate), never inflating past ``limit`` bytes."""
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc in ("gzip", "x-gzip"):
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    elif enc == "deflate":
        d = zlib.decompressobj()
    else:
        raise UnsupportedMediaType(f"content encoding {enc!r} is not supported; use gzip or identity")
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise BadRequest(f"body is not valid {enc} data: {e}") from None
    if len(out) > limit or d.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body exceeds the limit of {limit} bytes")
    if not d.eof:
        raise BadRequest(f"{enc} body is truncated")
    return out


def parse_events(body: bytes, ndjson: bool) -> list[dict[str, Any]]:
    """One object, an array of objects, or NDJSON → list of objects (400 on anything else)."""
    return [ev for ev, _ in parse_events_raw(body, ndjson)]


def parse_events_raw(body: bytes, ndjson: bool,
                     probe: msgspec.json.Decoder | None = None) -> list[tuple[Any, bytes | None]]:
    """Like ``parse_events``, each object paired with its exact JSON text when the body has
    it on its own line (a single object, an NDJSON line), else None (members of an array, an
    object spread over lines, a line holding a CR): those are re-encoded by the caller.

    ``probe``: a decoder of a ``msgspec.Struct`` holding only the fields the caller reads,
    used for NDJSON and for a single JSON object on one line. Each line (or the object) is
    then checked to be one well-formed JSON object and only those fields are built (about 4×
    faster than a whole ``orjson.loads``); the caller gets the Struct and the line, which it
    keeps as sent. Any problem takes the full path below, so error messages do not change.
    """
    if probe is not None and type(body) is bytes:
        if ndjson:
            probed = _probe_lines(body, probe)
            if probed:
                return probed
        elif body[:1] == b"{" or body.lstrip()[:1] == b"{":
            raw = body.strip()
            if b"\n" not in raw and b"\r" not in raw:
                probed = _probe_one(raw, probe)
                if probed is not None:
                    return [(probed, raw)]
    if not ndjson:
        try:
            doc = loads_exact(body)  # an array's members are re-encoded: keep every value as sent
        except RecursionError:
            raise BadRequest(f"body nests objects and arrays more than {MAX_DEPTH} levels deep") from None
        except json.JSONDecodeError as e:
            if b"\n" in body.strip():
                # Looks like NDJSON sent with a JSON content type: accept it if it parses.
                try:
                    return parse_events_raw(body, True)
                except BadRequest:
                    pass
            raise BadRequest(f"malformed JSON at line {e.lineno}, column {e.colno} (offset {e.pos}): {e.msg}") from None
        if isinstance(doc, dict):
            raw = body.strip()
            # A pretty-printed object spans lines: journal entries and JSONL lines must not.
            return [(doc, None if b"\n" in raw or b"\r" in raw else raw)]
        if isinstance(doc, list):
            for i, item in enumerate(doc):
                if not isinstance(item, dict):
                    raise BadRequest(f"event {i} is a {_kind(item)}, not a JSON object")
            if not doc:
                raise BadRequest("empty array: send at least one event")
            return [(item, None) for item in doc]
        raise BadRequest(f"body is a {_kind(doc)}; send a JSON object, an array of objects or NDJSON")
    loads = orjson.loads
    if type(body) is bytes:
        # Fast path, every loop in C: strip, drop blank lines, parse each line on its own.
        # Anything wrong (or no event) takes the loop below, which names the bad line.
        lines = list(filter(None, map(bytes.strip, body.split(b"\n"))))
        try:
            docs = list(map(loads, lines))
        except orjson.JSONDecodeError:
            docs = None
        if docs and set(map(type, docs)) == {dict} and not _inner_cr(body, lines):
            return list(zip(docs, lines))
    events = []
    for lineno, line in enumerate(body.split(b"\n"), 1):
        line = line.strip()
        if not line:
            continue
        try:
            doc = loads_exact(line)  # the line is kept as sent; this only checks it (1e999 too)
        except RecursionError:
            raise BadRequest(f"line {lineno} nests objects and arrays more than {MAX_DEPTH} levels deep") from None
        except json.JSONDecodeError as e:
            raise BadRequest(f"malformed JSON on line {lineno}, column {e.colno}: {e.msg}") from None
        if type(doc) is not dict:
            raise BadRequest(f"line {lineno} is a {_kind(doc)}, not a JSON object")
        # A CR inside the line (JSON whitespace) would split it for readers of universal
        # newlines: such a line is re-encoded on one line, like a pretty-printed object.
        events.append((doc, None if b"\r" in line else line))
    if not events:
        raise BadRequest("empty body: send at least one event")
    return events


def _probe_lines(body: bytes, probe: msgspec.json.Decoder) -> list[tuple[Any, bytes]] | None:
    if not _utf8(body):
        return None
    lines = list(filter(None, map(bytes.strip, body.split(b"\n"))))
    if _inner_cr(body, lines):  # such a line is re-encoded: the full path decodes it whole
        return None
    try:
        return list(zip(map(probe.decode, lines), lines))
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # the full path names the problem
        return None


def _inner_cr(body: bytes, lines: list[bytes]) -> bool:
    """True if a stripped NDJSON line still holds a CR (a CRLF line ending alone does not)."""
    return b"\r" in body and any(b"\r" in line for line in lines)


def _probe_one(raw: bytes, probe: msgspec.json.Decoder) -> Any:
    if not _utf8(raw):
        return None
    try:
        return probe.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):  # the full path names the problem
        return None


def _utf8(body: bytes) -> bool:
    """msgspec checks the syntax of the fields it skips but not their UTF-8: check it here."""
    if body.isascii():
        return True
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True


def _kind(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            int: "number", float: "number", type(None): "null"}.get(type(v), type(v).__name__)
