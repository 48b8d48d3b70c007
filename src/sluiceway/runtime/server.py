"""Process model for ``sluice serve``.

This process binds the socket and starts ``server.workers`` HTTP worker processes that share
it (role ``http``: worker *i* appends to journal partition ``w<i>`` and fsyncs before every
2xx). It then delivers every partition to the sinks itself (role ``delivery``), at a lower
CPU priority (``server.delivery_nice``): under a burst, accepting data wins the CPU and the
journal absorbs the backlog, which delivery works off when the burst is over. A worker that
dies is restarted. SIGTERM/SIGINT: the workers stop accepting and finish in-flight requests,
then the open batches are flushed to every sink within ``server.shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import socket
import sys
from typing import TYPE_CHECKING

import uvicorn

from sluiceway.http.app import create_app
from sluiceway.runtime.gateway import Gateway
from sluiceway.telemetry.logging import configure_logging, get_logger

if TYPE_CHECKING:
    from sluiceway.config import Config

log = get_logger("sluiceway.server")


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM/SIGINT after a graceful shutdown, which would make the
    process die by the signal; a clean, complete shutdown exits 0 instead."""

    @contextlib.contextmanager
    def capture_signals(self):
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def _uvicorn_config(app, config: "Config", **kw) -> uvicorn.Config:
    return uvicorn.Config(
        app, loop="uvloop" if sys.platform != "win32" else "asyncio", http="httptools", lifespan="on",
        access_log=False, log_level="warning", server_header=False,
        timeout_graceful_shutdown=max(1, int(config.server.shutdown_timeout)), **kw,
    )


def serve(config: "Config") -> int:
    """Run the gateway until SIGTERM/SIGINT. Returns the process exit code."""
    configure_logging(config.log.level, config.log.format)
    return _serve_multi(config)


def _worker_main(config: "Config", index: int, sock: socket.socket) -> None:
    configure_logging(config.log.level, config.log.format)
    _restore_priority()
    gateway = Gateway(config, role="http", worker_index=index)
    server = _Server(_uvicorn_config(create_app(gateway), config))
    server.run(sockets=[sock])
    sys.exit(0 if server.started else 1)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_multi(config: "Config") -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    metrics_dir = config.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    try:
        sock = _bind(config.server.host, config.server.port)
    except OSError as e:
        log.error("cannot listen", host=config.server.host, port=config.server.port, error=e.strerror or str(e))
        return 1
    log.info("listening", url=f"http://{config.server.host}:{config.server.port}", workers=config.server.workers)
    try:
        return asyncio.run(_supervise(config, sock))
    finally:
        sock.close()


async def _supervise(config: "Config", sock: socket.socket) -> int:
    ctx = multiprocessing.get_context("spawn")
    gateway = Gateway(config, role="delivery")
    gateway.acquire_lock()
    gateway.blobs.purge_partials()  # uploads a crash interrupted; no worker is running yet
    await migrate(config)  # before the workers, which open the store without migrating
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def start(i: int):
        p = ctx.Process(target=_worker_main, args=(config, i, sock), name=f"sluice-worker-{i}", daemon=False)
        p.start()
        return p

    procs = [start(i) for i in range(config.server.workers)]
    # Lower the priority before the delivery side starts any thread (threads inherit it).
    _lower_priority(config.server.delivery_nice)
    failures = 0
    try:
        await gateway.open()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            for i, p in enumerate(procs):
                if not p.is_alive() and not stop.is_set():
                    failures += 1
                    log.error("worker exited; restarting", worker=i, exitcode=p.exitcode)
                    if failures > 10 * config.server.workers:
                        log.error("workers keep failing; stopping")
                        stop.set()
                        break
                    await asyncio.sleep(min(5.0, 0.2 * failures))
                    procs[i] = start(i)
    finally:
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signal.SIGTERM)
        deadline = loop.time() + config.server.shutdown_timeout + 5
        for p in procs:
            while p.is_alive() and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if p.is_alive():
                p.kill()
            p.join(1)
        flushed = await gateway.aclose(drain=True)
    if not flushed:
        log.error("exiting with records not yet delivered; they stay in the journal and are sent on the next start")
        return 1
    return 0 if failures <= 10 * config.server.workers else 1


async def migrate(config: "Config") -> None:
    from sluiceway.store import Store

    store = Store.from_url(config.store_url)
    await store.open(migrate=True)
    await store.aclose()


def _lower_priority(nice: int) -> None:
    """Nice the delivery side and mark it a batch job (no wake-up preemption of the HTTP
    workers). On Linux both apply to the calling thread and to threads it creates later."""
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), nice))
        if hasattr(os, "SCHED_BATCH"):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as e:
        log.warning("cannot lower the delivery process's priority", error=str(e))


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
