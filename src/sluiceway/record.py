"""Record: the one envelope everything becomes, and its fast encoding.

A record is encoded once (orjson) when it enters the journal and decoded by sinks. The
encoded form is a JSON object with the fields below; ``received_at``/``event_time`` are
RFC 3339 strings in UTC.
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import msgspec
import orjson
import uuid_utils

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")

UTC = timezone.utc


def valid_name(value: str) -> bool:
    """Stream names and tenant ids end up in paths and keys: ``[a-z0-9][a-z0-9_-]{0,63}``."""
    return bool(NAME_RE.match(value))


# How deeply one event (a payload) may nest objects and arrays. Every reader a record meets
# must handle it wherever it runs: msgspec and the json module stop at Python's recursion
# limit (1,000 frames, the caller's included); orjson reads 1,024 levels but writes only 254,
# and it re-encodes array members, collected lines, the logs table's ``raw`` and feedback
# items, some a few levels inside a larger document.
# Receivers refuse deeper events (400), so nothing is accepted that cannot be read back.
MAX_DEPTH = 200
# A JSON text of n levels has n opening and n closing brackets: one this short cannot be deeper.
DEPTH_BYTES = 2 * MAX_DEPTH + 1
# A JSON string with its quotes (escapes included).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")


def nesting_depth(data: bytes) -> int:
    """How deeply the JSON text ``data`` nests objects and arrays (0 for a scalar)."""
    depth = deepest = 0
    for c in _STRING.sub(b"", data).translate(None, _NOT_BRACKETS):
        if c == 0x7B or c == 0x5B:  # { [
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


def too_deep(data: bytes, within: int = 0) -> bool:
    """True if the JSON text ``data``, put ``within`` levels deep in a payload, would nest
    deeper than ``MAX_DEPTH``. Callers on a hot path test ``len(data) > DEPTH_BYTES`` first;
    texts that short are never too deep."""
    limit = MAX_DEPTH - within
    if len(data) <= 2 * limit + 1 or data.count(b"{") + data.count(b"[") <= limit:
        return False
    return nesting_depth(data) > limit


# A run of 19 or more digits: an integer orjson may read as a float (it keeps 64 bits).
_LONG_INT = re.compile(rb"\d{19,}")
_LONG_INT_STR = re.compile(r"\d{19,}")


def loads_exact(text: bytes | bytearray | str) -> Any:
    """JSON text → Python, every value as written. orjson checks the text and reads it, except
    where it would change a value (an integer past 64 bits, which it reads as a float) or
    refuses one that is valid JSON (a number past a double's range, 1e999): the standard
    library reads those texts (integers whole, 1e999 as a ``HugeNumber``). Raises orjson's
    ``JSONDecodeError`` (a ``json.JSONDecodeError``) naming the problem, or ``RecursionError``."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        if "number" not in e.msg:  # refused for what it is, not for a number orjson cannot hold
            raise
    else:
        if (_LONG_INT_STR if isinstance(text, str) else _LONG_INT).search(text) is None:
            return value
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError:
        raise
    except ValueError as e:  # NaN or Infinity, text that is not UTF-8
        raise json.JSONDecodeError(str(e), "", 0) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class HugeNumber(float):
    """A JSON number past a double's range (``1e999``), or an integer with more digits than
    Python converts (``sys.get_int_max_str_digits()``, a guard against slow conversions), as
    ``loads_exact`` reads it: a float of value ±inf that keeps its text, which ``dumps_exact``
    writes back as it was sent."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> "HugeNumber":
        number = super().__new__(cls, text)
        number.text = text
        return number


def _float(text: str) -> float:
    number = float(text)
    return number if math.isfinite(number) else HugeNumber(text)


def _int(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:  # too many digits to convert
        return HugeNumber(text)


class TooDeep(ValueError):
    """A JSON text nests objects and arrays deeper than a payload may (``MAX_DEPTH``)."""

    def __init__(self, within: int = 0):
        super().__init__(f"nests objects and arrays more than {MAX_DEPTH - within} levels deep")


def loads_payload(text: bytes, within: int = 0) -> Any:
    """``loads_exact`` of a document that becomes part of a payload, ``within`` levels down:
    ``TooDeep`` if it would nest deeper than ``MAX_DEPTH`` there (a sink could not read it
    back), ``json.JSONDecodeError`` if it is not JSON."""
    try:
        doc = loads_exact(text)
    except RecursionError:
        raise TooDeep(within) from None
    if too_deep(text, within):
        raise TooDeep(within)
    return doc


def dumps_exact(value: Any) -> bytes:
    """Python → JSON text: orjson, or, for what it cannot write (integers past 64 bits, a
    ``HugeNumber``), the standard library, with a ``HugeNumber`` as its text and other
    non-finite numbers as null (as orjson writes them). Raises ``RecursionError`` past Python's
    recursion limit."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        huge: list[str] = []
        tag = secrets.token_hex(8)
        text = json.dumps(_finite(value, huge, tag), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        if huge:  # each stands in as the string "\x01<tag><index>\x01": put its text back
            text = re.sub(rf'"\\u0001{tag}(\d+)\\u0001"', lambda m: huge[int(m.group(1))], text)
        return text.encode()


def _finite(v: Any, huge: list[str], tag: str) -> Any:
    if isinstance(v, float):
        if type(v) is HugeNumber:
            huge.append(v.text)
            return f"\x01{tag}{len(huge) - 1}\x01"
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: _finite(x, huge, tag) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x, huge, tag) for x in v]
    return v


def new_id() -> str:
    """A time-ordered UUIDv7 as a canonical string (sorts by creation time)."""
    return str(uuid_utils.uuid7())


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class Attachment:
    """A blob a record refers to. ``key`` names it in the blob spool (``blobs.BlobSpool``);
    ``name`` is the source's suggested object name (``attachments`` sinks may use it in their
    keys); ``metadata`` is stored with the object where the store keeps metadata (S3)."""

    key: str
    sha256: str
    size: int
    content_type: str = "application/octet-stream"
    name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Record:
    id: str
    tenant: str
    stream: str
    source: str
    received_at: datetime
    payload: dict[str, Any]
    event_time: datetime | None = None
    idempotency_key: str | None = None
    attachments: list[Attachment] = field(default_factory=list)

    def encode(self) -> bytes:
        try:
            return orjson.dumps(self, option=orjson.OPT_UTC_Z)
        except orjson.JSONEncodeError:  # a payload value only dumps_exact writes
            d = orjson.loads(orjson.dumps(replace(self, payload={}), option=orjson.OPT_UTC_Z))
            d["payload"] = self.payload
            return dumps_exact(d)

    def to_dict(self) -> dict[str, Any]:
        return loads_exact(self.encode())

    @classmethod
    def decode(cls, data: bytes | str) -> "Record":
        return cls.from_dict(loads_exact(data))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Record":
        et = d.get("event_time")
        return cls(
            id=d["id"],
            tenant=d["tenant"],
            stream=d["stream"],
            source=d.get("source", ""),
            received_at=parse_time(d["received_at"]),
            payload=d.get("payload") or {},
            event_time=parse_time(et) if et else None,
            idempotency_key=d.get("idempotency_key"),
            attachments=[Attachment(**a) for a in d.get("attachments") or ()],
        )


_second: list[Any] = [None, ""]  # the last whole second formatted, and its text up to the "."


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds (``2026-01-31T12:00:00.000001Z``);
    the date and time of day are formatted once per second."""
    s, us = divmod(time.time_ns() // 1000, 1_000_000)
    if s != _second[0]:
        _second[1] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(s))
        _second[0] = s
    return "%s%06dZ" % (_second[1], us)


def parse_time(value: str | datetime) -> datetime:
    """Parse an RFC 3339 / ISO 8601 time; naive values are taken as UTC."""
    if isinstance(value, datetime):
        dt = value
    else:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00: before datetime.min in UTC
        raise ValueError(f"{value!r} is out of the range of times once converted to UTC") from None


# -- decoding journal entries ------------------------------------------------------------------

_REQUIRED = ("id", "tenant", "stream", "received_at")


def decode_doc(data: bytes) -> dict | None:
    """A journal entry as a Record document (a dict, payload decoded), or None if it is not one."""
    try:
        doc = loads_exact(data)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read here
        return None
    if type(doc) is not dict:
        return None
    for k in _REQUIRED:
        if type(doc.get(k)) is not str:
            return None
    return doc


class RecordHead(msgspec.Struct, frozen=True):
    """A journal entry's envelope decoded, its ``payload`` and ``attachments`` kept as their
    JSON text (``msgspec.Raw``, checked but not turned into objects). What the default sinks
    need of a record, at a third of the cost of decoding it whole."""

    id: str
    tenant: str
    stream: str
    received_at: str
    source: Any = ""
    event_time: Any = None
    idempotency_key: Any = None
    attachments: msgspec.Raw = msgspec.Raw(b"[]")
    payload: msgspec.Raw = msgspec.Raw(b"null")


_HEAD = msgspec.json.Decoder(RecordHead)


def decode_head(data: bytes) -> RecordHead | None:
    """A journal entry's ``RecordHead``, or None if it is not a Record: not UTF-8, not JSON,
    not an object, or without the string fields ``id``, ``tenant``, ``stream`` and
    ``received_at`` (what ``decode_doc`` refuses; and a lone surrogate escape, which no
    writer of the journal produces)."""
    try:
        data.decode()  # msgspec does not check the UTF-8 of the text it skips
        return _HEAD.decode(data)
    except (UnicodeDecodeError, msgspec.DecodeError, RecursionError):  # nested too deeply to read here
        return None
