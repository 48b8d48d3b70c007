"""What the journal tests share."""

from __future__ import annotations

from sluiceway.journal import Entry


async def read_all(part, after: int = 0, max_count: int = 7, max_bytes: int = 1 << 20) -> list[Entry]:
    out: list[Entry] = []
    while True:
        batch = await part.read(after, max_count, max_bytes)
        if not batch:
            return out
        out += batch
        after = batch[-1].offset


def item(i: int) -> bytes:
    return b"item-%05d-" % i + b"x" * (i % 37)
