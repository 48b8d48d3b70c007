"""The journal interface: the durability point between sources and sinks.

A *journal* is a set of *partitions*. A partition is an append-only log of opaque byte
entries (encoded Records) numbered by a strictly increasing offset starting at 1. The
embedded journal has one partition per writer process (``w0``, ``w1``, …); a JetStream
journal maps a partition onto a stream.

Contract every implementation keeps:

* ``append(items)`` returns only once every item is durable (fsynced / acked by the
  server). Concurrent appends may share one sync (group commit). Offsets returned are
  the offsets assigned. When over its size limit it raises ``JournalFull`` and stores
  nothing.
* ``read(after, max_count, max_bytes)`` returns durable entries with offset > ``after``,
  oldest first; at least one entry if any exists even when it alone exceeds max_bytes.
* ``wait(after, timeout)`` returns True as soon as an entry with offset > ``after`` exists.
* Consumers are named (one per sink). ``load_cursor``/``save_cursor`` persist a consumer's
  ``Cursor`` durably: ``acked`` (every entry <= acked is done) and ``pending``, the exact
  offset range of a batch being sent, so that after a crash the same batch is re-sent with
  the same boundaries (sinks derive keys from them).
* Space is reclaimed only for entries that every registered consumer has acked.
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from sluiceway.errors import JournalError


CONSUMER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")  # consumer (sink) names


@dataclass(frozen=True, slots=True)
class Entry:
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Cursor:
    acked: int = 0
    pending: tuple[int, int] | None = None

    def encode(self) -> bytes:
        """As stored: ``{"acked": n, "pending": [first, last] | null}``. JournalError if invalid."""
        if self.acked < 0 or (self.pending is not None and not 0 < self.pending[0] <= self.pending[1]):
            raise JournalError(f"invalid cursor {self!r}")
        return orjson.dumps({"acked": self.acked, "pending": list(self.pending) if self.pending else None})

    @classmethod
    def decode(cls, raw: bytes) -> "Cursor":
        """The inverse of ``encode``; ValueError naming what is wrong."""
        try:
            d = orjson.loads(raw)
            acked, pending = d["acked"], d.get("pending")
            if not isinstance(acked, int) or acked < 0:
                raise ValueError("acked must be a non-negative integer")
            if pending is not None:
                a, b = pending
                if not (isinstance(a, int) and isinstance(b, int) and 0 < a <= b):
                    raise ValueError("pending must be [first, last]")
                pending = (a, b)
        except (ValueError, TypeError, KeyError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise ValueError(str(exc)) from None
        return cls(acked, pending)


@dataclass(frozen=True, slots=True)
class PartitionStats:
    name: str
    first_offset: int  # oldest entry still stored (0 when empty)
    last_offset: int  # newest durable entry (0 when empty)
    bytes: int  # bytes on disk for this partition


class Partition(abc.ABC):
    """One append-only log."""

    name: str

    @abc.abstractmethod
    async def append(self, items: Sequence[bytes]) -> tuple[int, int]:
        """Append ``items`` durably; return (first_offset, last_offset). Raises JournalFull."""

    def append_soon(self, items: Sequence[bytes]) -> "asyncio.Future[tuple[int, int]]":
        """``append`` without waiting: the future of its result (for callers that cannot
        await, such as the HTTP protocol's direct path). The embedded journal raises
        JournalFull at once; here it is the future's exception."""
        return asyncio.ensure_future(self.append(items))

    @abc.abstractmethod
    async def read(self, after: int, max_count: int, max_bytes: int) -> list[Entry]:
        """Durable entries with offset > after, oldest first."""

    @abc.abstractmethod
    async def wait(self, after: int, timeout: float) -> bool:
        """Wait until an entry with offset > after exists; False on timeout."""

    @abc.abstractmethod
    async def load_cursor(self, consumer: str) -> Cursor:
        """The consumer's cursor, read by that consumer as it starts (it alone saves it
        afterwards); ``Cursor()`` if it never saved one."""

    @abc.abstractmethod
    async def save_cursor(self, consumer: str, cursor: Cursor) -> None:
        """Persist durably; then reclaim space every registered consumer has acked."""

    @abc.abstractmethod
    def stats(self) -> PartitionStats: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class Journal(abc.ABC):
    """A set of partitions. Writers append to their own partition; delivery reads all.

    Implementations keep the partitions they know in ``_parts`` (name → partition), their own
    in ``_own`` once opened as a writer, and set ``_opened`` when open."""

    is_writer: bool
    _parts: dict[str, Partition]
    _own: Partition | None = None
    _opened: bool = False

    @abc.abstractmethod
    async def open(self, consumers: Sequence[str]) -> None:
        """Open (recovering from a crash) and register the named consumers."""

    def writer(self) -> Partition:
        """The partition this process appends to."""
        if self._own is None:
            if self._opened and not self.is_writer:
                raise JournalError("journal was opened read-only (writer=False)")
            raise JournalError("journal is not open")
        return self._own

    def partitions(self) -> list[Partition]:
        """Every partition this process delivers from (rescanned by refresh())."""
        return [self._parts[name] for name in sorted(self._parts)]

    async def refresh(self) -> list[Partition]:
        """Pick up partitions created by other processes since open. Default: none.

        A partition that cannot be read (``JournalError``, e.g. ``JournalCorrupt``) is left out
        and tried again at the next call; the others are taken all the same (``partitions()``
        lists them), and then the first such error is raised."""
        return self.partitions()

    @abc.abstractmethod
    def full(self) -> float | None:
        """None when appends are allowed; else seconds a client should wait (Retry-After)."""

    def unavailable(self) -> str | None:
        """Why appends cannot succeed now (for ``/ready``), or None. Default: None."""
        return None

    async def reclaim_idle(self) -> int:
        """Free what rule-based reclaim at cursor saves cannot: space held by partitions that no
        process writes any more and every registered consumer has acked to the end. Bytes freed;
        called now and then by delivery. Default: nothing to do (0)."""
        return 0

    @abc.abstractmethod
    async def cursor(self, partition: str, consumer: str) -> Cursor:
        """A consumer's cursor on any partition (e.g. another process's), as last saved."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...
