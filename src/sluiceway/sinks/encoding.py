"""Encodings shared by sinks: JSON Lines, gzip-compressed JSON Lines, and grouping.

One record per line, as ``Record.encode`` writes it (orjson), an object with the fields
``id``, ``tenant``, ``stream``, ``source``, ``received_at``, ``event_time``,
``idempotency_key``, ``attachments`` and ``payload``; times are RFC 3339 UTC with ``Z``.
Every line ends with ``\\n``; ``Record.decode`` reads a line back.

The gzip output is deterministic: the header's mtime is 0 and no file name is stored, so the
same records at the same level always give the same bytes. Re-sent batches therefore
overwrite objects with identical content. It is compressed by zlib-ng (``zlib_ng.gzip_ng``),
standard gzip that any gunzip reads, and faster than the standard library's zlib at the same
level: ``bench/drain.py objects`` costs 3.4-3.5 µs of CPU per record with it against 4.2-4.5
(docs/benchmarks.md, notes), delivery CPU taken from ingest's core at a steady rate.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

from zlib_ng import gzip_ng

from sluiceway.record import Record

JSONL_CONTENT_TYPE = "application/x-ndjson"
GZIP_ENCODING = "gzip"

K = TypeVar("K", bound=Hashable)


def encode_jsonl(records: Iterable[Record]) -> bytes:
    """Records as JSON Lines (each line ends with a newline; empty input → ``b""``)."""
    lines = [r.encode() for r in records]
    if not lines:
        return b""
    lines.append(b"")
    return b"\n".join(lines)


def encode_jsonl_gzip(records: Iterable[Record], level: int = 6) -> bytes:
    """Records as gzip-compressed JSON Lines; deterministic for the same input and level."""
    return gzip_lines([r.encode() for r in records], level)


def gzip_lines(lines: list[bytes], level: int = 6) -> bytes:
    """Already-encoded JSON lines (no trailing newline each) as deterministic gzip JSONL."""
    if not 1 <= level <= 9:
        raise ValueError(f"gzip level must be 1-9, not {level}")
    if not lines:
        return gzip_ng.compress(b"", compresslevel=level, mtime=0)
    return gzip_ng.compress(b"\n".join(lines) + b"\n", compresslevel=level, mtime=0)


def iter_jsonl(data: bytes) -> Iterator[Record]:
    """Decode JSON Lines written by ``encode_jsonl`` (blank lines are skipped)."""
    for line in data.split(b"\n"):
        if line.strip():
            yield Record.decode(line)


def decode_jsonl_gzip(data: bytes) -> list[Record]:
    """Decode what ``encode_jsonl_gzip`` wrote."""
    return list(iter_jsonl(gzip.decompress(data)))


def group_records(records: Iterable[Record], key_fn: Callable[[Record], K]) -> dict[K, list[Record]]:
    """Records grouped by ``key_fn``: groups in first-seen order, records in input order."""
    groups: dict[K, list[Record]] = {}
    for record in records:
        k = key_fn(record)
        group = groups.get(k)
        if group is None:
            groups[k] = [record]
        else:
            group.append(record)
    return groups
