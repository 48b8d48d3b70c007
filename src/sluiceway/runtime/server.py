"""Process model for ``sluice serve``.

This process binds the port and starts ``server.workers`` HTTP worker processes that serve
it (one socket each on Linux, see ``_bind``; role ``http``: worker *i* appends to journal partition ``w<i>`` and fsyncs before every
2xx). It then delivers every partition to the sinks itself (role ``delivery``), at a lower
CPU priority (``server.delivery_nice``): under a burst, accepting data wins the CPU and the
journal absorbs the backlog, which delivery works off when the burst is over. Its disk I/O is
in the ``idle`` class (``server.delivery_io_class``; Linux I/O schedulers that honour classes,
such as mq-deadline and BFQ): a worker's journal sync does not queue behind a sink's writes of
object files and SQLite pages. A worker that dies is restarted. SIGTERM/SIGINT: the workers stop accepting and finish in-flight requests,
then the open batches are flushed to every sink within ``server.shutdown_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import psutil

from sluiceway.runtime import worker
from sluiceway.runtime.gateway import Gateway
from sluiceway.runtime.memory import tune_malloc
from sluiceway.telemetry.logging import configure_logging, get_logger

if TYPE_CHECKING:
    from sluiceway.config import Config

log = get_logger("sluiceway.server")


def serve(config: "Config") -> int:
    """Run the gateway until SIGTERM/SIGINT. Returns the process exit code."""
    tune_malloc()
    configure_logging(config.log.level, config.log.format)
    return _serve_multi(config)


def _bind(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """Listening sockets for ``count`` workers: one shared socket, or on Linux with several
    workers one ``SO_REUSEPORT`` socket per worker.

    Workers sharing one socket do not share the connections: the first to wake accepts all it
    finds, so the few long-lived connections of a bulk client often all land on one worker
    while the other idles. With a socket each, the kernel spreads new connections over the
    workers by a hash of their addresses. A port held by anything else is refused as before:
    it is first bound without ``SO_REUSEPORT``, which fails if any socket holds it (including
    another gateway's reuse-port group)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    reuse_port = count > 1 and sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")

    def one(port: int, reuse: bool) -> socket.socket:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        return sock

    if not reuse_port:
        socks = [one(port, False)]
    else:
        probe = one(port, False)  # EADDRINUSE if anyone holds the port
        port = probe.getsockname()[1]  # port 0: the one the kernel chose
        probe.close()
        socks = []
        try:
            for _ in range(count):
                socks.append(one(port, True))
        except OSError:
            for s in socks:
                s.close()
            raise
    for sock in socks:
        sock.listen(2048)
        sock.set_inheritable(True)
    return socks


def _serve_multi(config: "Config") -> int:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config = config.resolve_journal()  # ``max_bytes: auto`` measured once, before any journal exists
    metrics_dir = config.data_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir()
    try:
        socks = _bind(config.server.host, config.server.port, config.server.workers)
    except OSError as e:
        log.error("cannot listen", host=config.server.host, port=config.server.port, error=e.strerror or str(e))
        return 1
    log.info("listening", url=f"http://{config.server.host}:{config.server.port}", workers=config.server.workers,
             journal_max_bytes=config.journal.max_bytes)
    try:
        return asyncio.run(_supervise(config, socks))
    finally:
        for sock in socks:
            sock.close()


async def _supervise(config: "Config", socks: list[socket.socket]) -> int:
    gateway = Gateway(config, role="delivery")
    gateway.acquire_lock()
    gateway.blobs.purge_partials()  # uploads a crash interrupted; no worker is running yet
    await migrate(config)  # before the workers, which open the store without migrating
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    def sock(i: int) -> socket.socket:  # worker i's own socket, or the shared one
        return socks[i % len(socks)]

    procs = [worker.spawn(config, i, sock(i)) for i in range(config.server.workers)]
    # Lower the priority before the delivery side starts any thread (threads inherit it).
    _lower_priority(config.server.delivery_nice, config.server.delivery_io_class)
    failures = 0
    try:
        await gateway.open()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
            except asyncio.TimeoutError:
                pass
            for i, p in enumerate(procs):
                if p.poll() is not None and not stop.is_set():
                    failures += 1
                    log.error("worker exited; restarting", worker=i, exitcode=p.returncode)
                    if failures > 10 * config.server.workers:
                        log.error("workers keep failing; stopping")
                        stop.set()
                        break
                    await asyncio.sleep(min(5.0, 0.2 * failures))
                    procs[i] = worker.spawn(config, i, sock(i))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = loop.time() + config.server.shutdown_timeout + 5
        for p in procs:
            while p.poll() is None and loop.time() < deadline:
                await asyncio.sleep(0.05)
            if p.poll() is None:
                p.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(1)
        flushed = await gateway.aclose(drain=True)
    if not flushed:
        log.error("exiting with records not yet delivered; they stay in the journal and are sent on the next start")
        return 1
    return 0 if failures <= 10 * config.server.workers else 1


async def migrate(config: "Config") -> None:
    """Migrate the store to head in a child process: Alembic (≈9 MB) never loads here."""
    from sluiceway.store import StoreError

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sluiceway.store.migrate", stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=worker.child_env())  # the URL on stdin: it may hold a password
    _, err = await proc.communicate(config.store_url.encode())
    if proc.returncode != 0:
        lines = err.decode(errors="replace").strip().splitlines()
        raise StoreError(lines[-1] if lines else f"store migration failed (exit code {proc.returncode})")


def _lower_priority(nice: int, io_class: str = "best-effort") -> None:
    """Nice the delivery side and mark it a batch job (no wake-up preemption of the HTTP
    workers); with ``io_class="idle"`` put its disk I/O in the idle class. On Linux all three
    apply to the calling thread and to threads it creates later."""
    if io_class == "idle" and hasattr(psutil, "IOPRIO_CLASS_IDLE"):  # Linux only
        try:
            psutil.Process().ionice(psutil.IOPRIO_CLASS_IDLE)
        except (OSError, psutil.Error) as e:
            log.warning("cannot lower the delivery process's I/O priority", error=str(e))
    if nice <= 0:
        return
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(os.getpriority(os.PRIO_PROCESS, 0), nice))
        if hasattr(os, "SCHED_BATCH"):
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except OSError as e:
        log.warning("cannot lower the delivery process's priority", error=str(e))
