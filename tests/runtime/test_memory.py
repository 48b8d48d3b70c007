"""glibc malloc settings of the server's processes (runtime.memory.tune_malloc).

Each case runs in a child process: the settings are the process's own."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

glibc_only = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")

# Frees a 16 MiB block (glibc then serves blocks up to that size from the heap), then allocates
# 8 blocks of 5 MiB, each followed by a small block that stays, and frees the big ones.
# Prints the settings applied and how many KiB of the 40 MiB freed the process still holds.
_SCRIPT = """
import sys
from sluiceway.runtime.memory import tune_malloc
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) * 1024
applied = tune_malloc() if sys.argv[1] == "tuned" else []
big = bytes(16 << 20)
del big
before = rss()
blocks, pins = [], []
for i in range(8):
    blocks.append(b"x" * (5 << 20))
    pins.append(b"p" * 1000 + bytes([i]))
del blocks
print(",".join(applied), (rss() - before) >> 10)
"""


def _run(mode: str, **env: str) -> tuple[list[str], int]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, timeout=60,
                         check=True, env={**os.environ, **env}).stdout.split()
    applied, kib = (out if len(out) == 2 else ["", *out])
    return [a for a in applied.split(",") if a], int(kib)


@glibc_only
def test_freed_bodies_go_back_to_the_system():
    applied, retained = _run("tuned")
    assert applied == ["MALLOC_MMAP_THRESHOLD_", "MALLOC_ARENA_MAX"]
    assert retained < 8 * 1024  # of 40 MiB freed
    # The defaults keep it: what the setting is for.
    _, untuned = _run("default")
    assert untuned > 32 * 1024


@glibc_only
def test_settings_from_the_environment_are_left_alone():
    applied, _ = _run("tuned", MALLOC_ARENA_MAX="4")
    assert applied == ["MALLOC_MMAP_THRESHOLD_"]
    applied, retained = _run("tuned", MALLOC_MMAP_THRESHOLD_="33554432", MALLOC_ARENA_MAX="4")
    assert applied == [] and retained > 32 * 1024
