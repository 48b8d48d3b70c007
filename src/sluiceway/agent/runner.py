"""The ship loop: scan → chunk → archive → upload → delete what was accepted; repeat.

A cycle stops at its first failed chunk; chunks already accepted stay deleted, the rest are
kept and the next attempt rescans everything. After a transient failure (timeout, connection
error, 429, 5xx) the next attempt waits ``backoff()`` (full jitter, ceiling doubling from
``retry_initial`` up to ``retry_interval``, at least a Retry-After within that cap); after a
rejection (other 4xx, 202 without ``request_id``) it waits ``retry_interval``. After a
success the next cycle is due at its start + ``collection_interval``.

``collection_interval: 0`` runs one cycle: exit 0 if it succeeded, else 1. Otherwise SIGTERM
or SIGINT ends the wait, one final collection runs, and the exit code is its result (0 / 1);
a second signal aborts that final collection (exit 1; nothing unsent is deleted).
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sluiceway.agent import collect
from sluiceway.agent.archive import write_archive
from sluiceway.agent.cleanup import delete_sent
from sluiceway.agent.config import ShipConfig
from sluiceway.agent.display import Display
from sluiceway.agent.upload import UploadRejected, Uploader
from sluiceway.errors import SluicewayError, TransientError
from sluiceway.sinks.delivery import backoff
from sluiceway.telemetry.logging import get_logger

log = get_logger("sluiceway.agent")


@dataclass
class CycleResult:
    ok: bool
    request_ids: list[str] = field(default_factory=list)
    error: SluicewayError | None = None


class Shipper:
    def __init__(self, cfg: ShipConfig, uploader: Uploader | None = None, display: Display | None = None):
        self.cfg = cfg
        self.uploader = uploader or Uploader(cfg)
        self.display = display or Display()
        self.stopping = threading.Event()
        self.waits: list[tuple[str, float]] = []  # (why, seconds) of every wait, newest last

    def stop(self) -> None:
        self.stopping.set()

    # -- one cycle --------------------------------------------------------------------------
    def run_cycle(self) -> CycleResult:
        cfg = self.cfg
        found = collect.scan(cfg.data_dir, allowed_subdirs=cfg.allowed_subdirs, max_bytes=cfg.max_archive_bytes,
                             settle_time=cfg.settle_time)
        for p in found.symlinks:
            log.warning("skipping symlink", path=str(p))
        for fe in found.oversized:
            log.warning("file larger than max_archive_bytes; skipped and kept", path=str(fe.path), size=fe.size,
                        max_archive_bytes=cfg.max_archive_bytes)
        if found.unknown:
            log.warning(f"Found {found.unknown} unknown files (outside allowed_subdirs; left alone)")
        if found.unstable:
            log.info(f"{len(found.unstable)} file(s) still being written; left for the next cycle")
        if not found.files:
            log.info(f"No data marked for collection in '{cfg.data_dir}'")
            return CycleResult(ok=True)
        chunks = collect.chunk(found.files, cfg.max_archive_bytes)
        log.info(f"Collected {len(found.files)} files (split to {len(chunks)} chunks)")
        result = CycleResult(ok=True)
        for i, files in enumerate(chunks, 1):
            try:
                request_id = self._ship(files, f"{i}/{len(chunks)}")
            except UploadRejected as e:
                log.error("upload rejected; files kept", chunk=f"{i}/{len(chunks)}", status=e.status, error=str(e))
                return CycleResult(False, result.request_ids, e)
            except TransientError as e:
                log.warning("upload failed; files kept", chunk=f"{i}/{len(chunks)}", error=str(e))
                return CycleResult(False, result.request_ids, e)
            except OSError as e:
                log.error("cannot build the archive; files kept", chunk=f"{i}/{len(chunks)}", error=str(e))
                return CycleResult(False, result.request_ids, TransientError(f"archive: {e}"))
            except Exception as e:  # a bug must not end a long-running agent: keep the files, retry
                log.exception("unexpected error; files kept", chunk=f"{i}/{len(chunks)}")
                return CycleResult(False, result.request_ids, TransientError(f"unexpected: {e!r}"))
            finally:
                self.display.done()
            if request_id:
                result.request_ids.append(request_id)
        return result

    def _ship(self, files: list[collect.FileEntry], label: str) -> str | None:
        with tempfile.TemporaryFile(prefix="sluice-ship-", suffix=".tgz") as tmp:
            packed_one = self.display.task(f"packing {label}", len(files))
            packed = write_archive(files, tmp, lambda fe: packed_one(1))
            if not packed:
                return None
            tmp.flush()
            size = tmp.tell()
            log.info(f"Uploading data chunk {label}", files=len(packed), bytes=size)
            request_id = self.uploader.upload(tmp, self.display.task(f"uploading {label}", size, as_bytes=True))
        log.info("upload accepted", chunk=label, request_id=request_id)
        if self.cfg.cleanup_after_send:
            deleted, kept = delete_sent(self.cfg.data_dir, packed)
            log.info(f"removed {len(deleted)} sent file(s)", kept_changed=len(kept))
        return request_id

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, handle_signals: bool = True) -> int:
        with _signals(self) if handle_signals else contextlib.nullcontext(), self.display:
            try:
                return self._loop()
            except KeyboardInterrupt:
                log.warning("interrupted; unsent files are kept")
                return 1
            finally:
                self.uploader.close()

    def _loop(self) -> int:
        cfg = self.cfg
        if cfg.collection_interval == 0:
            return 0 if self.run_cycle().ok else 1
        attempt = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            res = self.run_cycle()
            if res.ok:
                attempt = 0
                delay = started + cfg.collection_interval - time.monotonic()
                if delay < 0:
                    log.warning(f"Collection took longer than interval ({cfg.collection_interval:g}s)")
                self._wait("next collection", max(0.0, delay))
            else:
                delay = self._retry_delay(res.error, attempt)
                attempt += isinstance(res.error, TransientError)
                log.info(f"Retrying data collection in {delay:.1f} seconds...")
                self._wait("retry", delay)
        log.info("stopping: one final collection")
        return 0 if self.run_cycle().ok else 1

    def _retry_delay(self, error: Any, attempt: int) -> float:
        cap = self.cfg.retry_interval
        if not isinstance(error, TransientError):
            return cap
        delay = backoff(attempt, min(self.cfg.retry_initial, cap), cap)
        if error.retry_after is not None:
            delay = min(max(delay, error.retry_after), cap)
        return delay

    def _wait(self, why: str, seconds: float) -> None:
        self.waits.append((why, seconds))
        self.stopping.wait(seconds)


@contextlib.contextmanager
def _signals(shipper: Shipper) -> Iterator[None]:
    """SIGTERM / SIGINT: stop after one final collection; a second one aborts it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if shipper.stopping.is_set():
            raise KeyboardInterrupt
        log.info(f"received {signal.Signals(signum).name}; finishing with one final collection")
        shipper.stop()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
