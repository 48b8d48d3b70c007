"""The delivering process's CPU and disk I/O priority (runtime.server._lower_priority).

Each case runs in a child process: the settings stick to the thread that makes them."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from sluiceway.config import load_config
from sluiceway.errors import ConfigError

linux_only = pytest.mark.skipif(not hasattr(psutil, "IOPRIO_CLASS_IDLE"), reason="I/O classes are Linux's")


def _child(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


@linux_only
def test_idle_io_class_and_nice_reach_threads_started_later():
    out = _child(
        "import os, threading, psutil\n"
        "from sluiceway.runtime.server import _lower_priority\n"
        "_lower_priority(10, 'idle')\n"
        "seen = []\n"
        "def probe():\n"
        "    seen.append((int(psutil.Process().ionice().ioclass), os.getpriority(os.PRIO_PROCESS, 0),\n"
        "                 os.sched_getscheduler(0) == os.SCHED_BATCH))\n"
        "t = threading.Thread(target=probe); t.start(); t.join()\n"
        "print(int(psutil.Process().ionice().ioclass), *seen[0])\n")
    main_class, thread_class, thread_nice, batch = out.split()
    assert int(main_class) == int(thread_class) == int(psutil.IOPRIO_CLASS_IDLE)
    assert int(thread_nice) >= 10 and batch == "True"


@linux_only
def test_best_effort_leaves_the_io_class_alone():
    out = _child("import psutil\nfrom sluiceway.runtime.server import _lower_priority\n"
                 "before = int(psutil.Process().ionice().ioclass)\n_lower_priority(0, 'best-effort')\n"
                 "print(before, int(psutil.Process().ionice().ioclass))\n")
    before, after = out.split()
    assert before == after


def test_io_class_is_validated_by_name():
    assert load_config(None, env={}).server.delivery_io_class == "idle"
    with pytest.raises(ConfigError) as e:
        load_config(None, env={"SLUICE_SERVER__DELIVERY_IO_CLASS": "realtime"})
    assert "server.delivery_io_class" in str(e.value) and "idle" in str(e.value)
