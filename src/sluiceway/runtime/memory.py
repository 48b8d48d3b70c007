"""glibc malloc settings for the long-running processes of ``sluice serve``.

With its defaults, glibc's malloc keeps memory that the gateway has freed:

* Its threshold for serving an allocation with its own ``mmap`` (returned to the system at
  ``free``) starts at 128 KiB and rises to the size of any such block freed, up to 32 MiB.
  After the first bulk request (a body of a few hundred kB, the records encoded from it),
  bodies come from the heap instead, and the heap does not shrink while anything small
  lives above them.
* Each thread that allocates gets an arena of its own, up to eight per core. The delivery
  process has several threads (SQLite's, the thread pool for file I/O, obstore's), and memory
  freed in one arena is not reused by the others.

So the processes grow under load and stay grown. ``tune_malloc`` fixes the mmap threshold at
128 KiB and allows two arenas. ``python bench/run.py --repeat 3`` on one machine, one run
before and one after: the server tree's peak RSS went from 202.0 MB to 176.6 MB (the
delivery process's from 108.9 MB to 98.1 MB; docs/benchmarks.md, notes). The cost is an
``mmap``/``munmap`` pair and a page fault per 4 KiB for each allocation over 128 KiB (bulk
bodies, the journal's write buffer): a few percent of CPU in the bulk benchmark. A setting the operator gave through glibc's own environment variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_ARENA_MAX``) is left alone. Other C libraries: nothing
is changed.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
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
        version = libc.gnu_get_libc_version  # glibc only (musl has mallopt but not this)
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    return libc


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
