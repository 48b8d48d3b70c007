"""A process that loaded obstore ends with os._exit after flushing its output, so obstore's
Tokio threads cannot abort it during the interpreter's teardown (SIGABRT after a clean run)."""

from __future__ import annotations

import subprocess
import sys

import pytest

LOAD = "import obstore, obstore.store; "


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("load", [LOAD, ""])
def test_the_status_and_the_output_survive(load):
    r = run(load + "import logging, sys; from sluiceway.runtime.finish import finish; "
                   "logging.basicConfig(); logging.warning('logged'); "
                   "print('out', end=''); sys.stderr.write('err'); finish(3)")
    assert (r.returncode, r.stdout) == (3, "out")
    assert "logged" in r.stderr and r.stderr.endswith("err")


@pytest.mark.parametrize("load", [LOAD, ""])
@pytest.mark.parametrize("code,status", [(None, 0), ("bad config", 1), (2, 2)])
def test_codes_as_sys_exit_takes_them(load, code, status):
    r = run(load + f"from sluiceway.runtime.finish import finish; finish({code!r})")
    assert r.returncode == status
    assert ("bad config" in r.stderr) == (code == "bad config")


def test_the_sluice_command_ends_through_it():
    r = subprocess.run([sys.executable, "-m", "sluiceway.cli", "validate", "/nonexistent.yaml"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "nonexistent" in r.stdout + r.stderr
