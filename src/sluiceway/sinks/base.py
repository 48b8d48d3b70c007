"""What a sink is: ``send``, ``healthcheck`` and ``aclose``. Nothing more.

A sink receives a ``Batch``: the decoded records of one contiguous journal range of one
partition. Batching, retries, dead letters and cursors belong to ``sinks.delivery``.

``send`` must be idempotent for the same batch: delivery is at-least-once, so the same
batch (same partition, same offsets, same records) may arrive again after a crash. Derive
object keys from ``batch.key``; upsert on record id in databases.

Raise ``TransientError`` for failures worth retrying (network, 5xx, 429, locked database)
and ``PermanentError`` for ones that will never succeed as they are. Any other exception
is treated as transient and logged with its traceback.
"""

from __future__ import annotations

import abc
from typing import Any

from sluiceway.record import Record, RecordHead, decode_doc, decode_head, dumps_exact


class Batch:
    """The records of one contiguous journal range of one partition.

    A batch holds the records in up to four forms, each derived lazily from another and
    cached: ``raw`` (the encoded Records as the journal stores them: one JSON object each),
    ``heads`` (their envelopes decoded, payloads as JSON text: ``RecordHead``), ``docs``
    (those objects parsed whole: plain dicts with RFC 3339 ``Z`` time strings) and
    ``records`` (``Record`` instances). Sinks take whichever form is cheapest for them: the
    object store writes ``raw`` lines as they are, grouped by ``heads``; the SQL sink binds
    ``heads``; sinks that read into payloads take ``docs``.
    """

    __slots__ = ("partition", "first_offset", "last_offset", "resent", "_records", "_raw", "_docs", "_heads")

    def __init__(self, partition: str, first_offset: int, last_offset: int,
                 records: list[Record] | None = None, *, raw: list[bytes] | None = None,
                 docs: list[dict[str, Any]] | None = None, heads: list[RecordHead] | None = None,
                 resent: bool = False):
        if records is None and raw is None and docs is None:
            raise ValueError("a Batch needs records, raw or docs")
        self.partition = partition
        # True for a range that was in flight when its delivery last stopped (the cursor's
        # ``pending``), sent again at start: a sink may find what that attempt left behind.
        self.resent = resent
        self.first_offset = first_offset
        self.last_offset = last_offset
        self._records = records
        self._raw = raw
        self._docs = docs
        self._heads = heads

    @property
    def key(self) -> str:
        """Unique, deterministic name for this batch: same range → same key."""
        return f"{self.partition}-{self.first_offset:012d}-{self.last_offset:012d}"

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            self._records = [Record.from_dict(d) for d in self.docs]
        return self._records

    @property
    def raw(self) -> list[bytes]:
        if self._raw is None:
            self._raw = [r.encode() for r in self.records] if self._records is not None \
                else [dumps_exact(d) for d in self.docs]
        return self._raw

    @property
    def docs(self) -> list[dict[str, Any]]:
        if self._docs is None:
            self._docs = [_valid(decode_doc(b), b) for b in self._raw] if self._raw is not None \
                else [r.to_dict() for r in self._records or ()]
        return self._docs

    @property
    def heads(self) -> list[RecordHead]:
        if self._heads is None:
            self._heads = [_valid(decode_head(b), b) for b in self.raw]
        return self._heads

    def __len__(self) -> int:
        for form in (self._docs, self._raw, self._records):
            if form is not None:
                return len(form)
        return 0


def _valid(decoded: Any, data: bytes) -> Any:
    if decoded is None:  # the delivery helper dead-letters such entries before any sink sees them
        raise ValueError(f"not an encoded Record: {data[:80]!r}")
    return decoded


class Sink(abc.ABC):
    name: str

    @abc.abstractmethod
    async def send(self, batch: Batch) -> None: ...

    async def healthcheck(self) -> None:
        """Raise if the destination is unreachable. Default: nothing to check."""

    async def aclose(self) -> None:
        """Release clients. Safe to call twice."""
