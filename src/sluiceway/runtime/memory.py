"""glibc malloc settings for the long-running processes of ``sluice serve``.

With its defaults, glibc's malloc keeps memory that the gateway has freed:

* Each thread that allocates gets an arena of its own, up to eight per core. The delivery
  process has several threads (SQLite's, the thread pool for file I/O, obstore's), and memory
  freed in one arena is not reused by the others.
* Its threshold for serving an allocation with its own ``mmap`` (returned to the system at
  ``free``) starts at 128 KiB and rises to the size of any such block freed, up to 32 MiB:
  after one large body, every body up to that size comes from the heap, which does not
  shrink while anything small lives above it.

So the processes grow under load and stay grown. ``tune_malloc`` allows two arenas and fixes
the mmap threshold at 4 MiB: bodies of a usual size reuse heap memory (a fresh mapping costs
a page fault per 4 KiB touched), and only larger ones are mapped and given back. The arena
limit is what counts: ``python bench/run.py --repeat 3`` on one machine, one run before and
one after the first version of this change (the threshold at 128 KiB): the server tree's peak
RSS went from 202.0 MB to 176.6 MB (the delivery process's from 108.9 MB to 98.1 MB). In hand
runs of the bulk load with two arenas (docs/benchmarks.md, notes), the tree peaked at
169.5-172.7 MB with the threshold at 32 MiB, 166.8-168.7 MB at 4 MiB and 165.0-166.2 MB at
128 KiB, and page faults took 7-9 % of the worker's CPU at 128 KiB against 4 % at 4 MiB.
A setting the operator gave through glibc's own environment variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_ARENA_MAX``) is left alone. Other C libraries: nothing
is changed.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 * 1024 * 1024
ARENA_MAX = 2

_SETTINGS = (
    ("MALLOC_MMAP_THRESHOLD_", M_MMAP_THRESHOLD, MMAP_THRESHOLD),
    ("MALLOC_ARENA_MAX", M_ARENA_MAX, ARENA_MAX),
)


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
    except OSError:
        return None
    # glibc only: musl has a mallopt that does nothing, and no gnu_get_libc_version.
    return libc if hasattr(libc, "gnu_get_libc_version") else None


def tune_malloc() -> list[str]:
    """Apply the settings above to this process; call it before starting threads. Returns
    the names of the settings applied (those not set by the environment and accepted)."""
    libc = _glibc()
    if libc is None:
        return []
    mallopt = libc.mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return [env for env, param, value in _SETTINGS if env not in os.environ and mallopt(param, value) == 1]
