"""What an HTTP worker of ``sluice serve`` imports: its memory is mostly imported code, and
several packages the gateway depends on have no use in it (runtime.worker.lean_imports)."""

from __future__ import annotations

import subprocess
import sys

# What runtime.worker.run imports, after lean_imports as in main; then a structlog console
# renderer formats a traceback, which it must do without rich.
_SCRIPT = """
import sys
from sluiceway.runtime.worker import lean_imports
lean_imports()
import uvicorn, uvloop
from sluiceway.http.app import create_app
from sluiceway.http.protocol import protocol_class
from sluiceway.runtime.gateway import Gateway
from sluiceway.store.lite import LiteStore
from sluiceway.telemetry.logging import configure_logging
configure_logging("info", "console")
import structlog
try:
    1 / 0
except ZeroDivisionError:
    structlog.get_logger("t").exception("boom")
heavy = sorted({m.split(".")[0] for m in sys.modules if sys.modules[m] is not None}
               & {"sqlalchemy", "alembic", "typer", "httpx", "yaml", "rich", "pygments"})
print("heavy:", heavy)
"""


def test_a_worker_loads_none_of_the_packages_it_has_no_use_for() -> None:
    r = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "heavy: []"
    assert "ZeroDivisionError" in r.stderr  # the traceback, formatted without rich
