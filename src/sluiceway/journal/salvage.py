"""Putting records kept in ``journal/quarantine/`` back into the journal (``sluice journal salvage``).

The quarantine holds what the gateway or ``sluice journal repair`` would not keep in a
partition: a damaged segment file (``<first>.seg``, whose good frames the repair already put
back) and the bytes cut off a torn tail when good frames followed the damage
(``<segment>.cut-at-<byte>``: the rest of a write that was never acknowledged, or records
behind a bad sector). Salvage finds the good frames in such a file (``segment.find_runs``, with
the offsets its name allows), keeps those whose payload is a record, and appends them, as they
are (same record ids), to a partition of their own, ``salvage``, from which the running gateway
delivers them like any other. The file is then renamed ``….salvaged``, so it is not taken
twice; were the command stopped between the append and the rename, a second run would append
the records again under the same ids (the SQL sink keeps one of each).

For a segment that ``sluice journal repair`` moved there, the good frames are back in their
partition already: salvaging it sends them again (same ids). It is for files moved by hand, and
for cut tails.

It works beside a running gateway: the gateway never writes a partition named ``salvage``, and
its writer lock keeps two salvages apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import JournalError
from ..fsutil import fsync_dir
from ..record import decode_head
from .segment import HDR, find_runs, run_payloads

PARTITION = "salvage"
NAME_RE = re.compile(r"(\d{20})\.seg(?:\.cut-at-\d+|\.\d+)?\Z")
BATCH_BYTES = 4 * 1024 * 1024


@dataclass
class Found:
    path: Path
    records: list[bytes]  # the good frames' payloads that are records, oldest first
    skipped: int  # good frames whose payload is not a record


def find_records(path: Path) -> Found:
    """The records in a quarantined file. ``JournalError`` if its name does not say where its
    offsets start (it is not a file the journal put there)."""
    m = NAME_RE.match(path.name)
    if m is None:
        raise JournalError(f"{path}: not a quarantined journal file (<first offset>.seg, .seg.<n> or "
                           ".seg.cut-at-<byte>)")
    first = int(m.group(1))
    data = path.read_bytes()
    records, skipped = [], 0
    for run in find_runs(data, first, first + len(data) // HDR):
        for payload in run_payloads(data, run):
            if decode_head(payload) is None:
                skipped += 1
            else:
                records.append(payload)
    return Found(path, records, skipped)


def batches(records: list[bytes]) -> Iterator[list[bytes]]:
    out: list[bytes] = []
    size = 0
    for r in records:
        if out and size + len(r) > BATCH_BYTES:
            yield out
            out, size = [], 0
        out.append(r)
        size += len(r)
    if out:
        yield out


def mark_salvaged(path: Path, sync: bool = True) -> Path:
    """Rename a file whose records were appended, so that it is not taken twice."""
    done = path.with_name(path.name + ".salvaged")
    os.rename(path, done)
    if sync:
        fsync_dir(path.parent)
    return done
