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
from dataclasses import dataclass

from sluiceway.record import Record


@dataclass(frozen=True, slots=True)
class Batch:
    partition: str
    first_offset: int
    last_offset: int
    records: list[Record]

    @property
    def key(self) -> str:
        """Unique, deterministic name for this batch: same range → same key."""
        return f"{self.partition}-{self.first_offset:012d}-{self.last_offset:012d}"

    def __len__(self) -> int:
        return len(self.records)


class Sink(abc.ABC):
    name: str

    @abc.abstractmethod
    async def send(self, batch: Batch) -> None: ...

    async def healthcheck(self) -> None:
        """Raise if the destination is unreachable. Default: nothing to check."""

    async def aclose(self) -> None:
        """Release clients. Safe to call twice."""
