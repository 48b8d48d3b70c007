"""An HTTP worker of ``sluice serve``: ``python -m sluiceway.runtime.worker FD``.

The supervisor (runtime/server.py) starts each worker as a plain child process rather than
through multiprocessing: its spawn method would also start multiprocessing's resource
tracker (one more process, ≈12 MB) and re-import the ``sluice`` command (typer, rich) in
every worker. The listening socket is inherited as file descriptor ``FD``; the worker's
index, configuration and store arrive pickled on stdin (see ``spawn``). Sinks are reduced to
their names (the journal's consumers): a worker only appends, so it never loads a sink's
client. Its store is a ``LiteStore`` (store/lite.py): no SQLAlchemy in the worker.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import site
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluiceway.config import Config
    from sluiceway.store.lite import LiteStore

_SRC = str(Path(__file__).resolve().parents[2])  # the directory holding the sluiceway package


def child_env() -> dict[str, str]:
    """The environment for ``python -m sluiceway…`` children: ours, plus this package's source
    tree on PYTHONPATH unless it is installed in site-packages (which children find anyway)."""
    env = dict(os.environ)
    if _SRC not in (*site.getsitepackages(), site.getusersitepackages()):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC, env.get("PYTHONPATH")) if p)
    return env


def spawn(config: "Config", index: int, sock: socket.socket) -> subprocess.Popen[bytes]:
    """Start worker ``index`` on ``sock`` (which must be inheritable)."""
    from sluiceway.config.types import SinkConfigBase
    from sluiceway.store.lite import LiteStore

    sinks = [SinkConfigBase(name=s.name, type=s.type) for s in config.sinks]
    payload = pickle.dumps((config.model_copy(update={"sinks": sinks}), index, LiteStore.from_url(config.store_url)))
    proc = subprocess.Popen([sys.executable, "-m", "sluiceway.runtime.worker", str(sock.fileno())],
                            stdin=subprocess.PIPE, pass_fds=(sock.fileno(),), env=child_env())
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):  # a worker that died at once is restarted
        proc.stdin.write(payload)
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
    return proc


def main() -> None:
    from sluiceway.runtime.memory import tune_malloc

    tune_malloc()
    lean_imports()
    config, index, store = pickle.load(sys.stdin.buffer)
    sock = socket.socket(fileno=int(sys.argv[1]))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    run(config, index, sock, store)


def lean_imports() -> None:
    """Keep packages a worker has no use for out of it (its resident memory is mostly imported
    code: 51 MB idle against 57 MB with these). structlog formats console tracebacks with rich,
    which loads pygments, whenever it can import it (about 5 MB); marked absent, structlog
    uses its plain traceback formatter. The rest stays out by importing late where it is used:
    httpx (feedback pulls), PyYAML (config files; a worker's config arrives pickled),
    SQLAlchemy (``store.lite`` serves the worker), typer (the ``sluice`` command)."""
    sys.modules.setdefault("rich", None)  # type: ignore[assignment]


def run(config: "Config", index: int, sock: socket.socket, store: "LiteStore") -> None:
    import uvicorn

    from sluiceway.http.app import create_app
    from sluiceway.http.protocol import protocol_class
    from sluiceway.runtime.gateway import Gateway
    from sluiceway.telemetry.logging import configure_logging

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would make the
        process die by the signal; a clean, complete shutdown exits 0 instead."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    configure_logging(config.log.level, config.log.format)
    _restore_priority()
    gateway = Gateway(config, role="http", worker_index=index, store=store)
    # proxy_headers off: nothing here reads the client address, so rewriting it from
    # X-Forwarded-For would be work on every request for nothing.
    app = create_app(gateway)
    server = Server(uvicorn.Config(
        app, loop="uvloop" if sys.platform != "win32" else "asyncio", http=protocol_class(app.direct),
        lifespan="on", access_log=False, log_level="warning", server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=max(1, int(config.server.shutdown_timeout)),
    ))
    server.run(sockets=[sock])
    from sluiceway.runtime.finish import finish

    finish(0 if server.started else 1)


def _restore_priority() -> None:
    """A worker restarted by the delivery process inherits its priority: undo that where
    allowed (the policy always; the nice value as root / CAP_SYS_NICE)."""
    try:
        if hasattr(os, "SCHED_OTHER") and os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
    except OSError:
        pass


if __name__ == "__main__":
    main()
