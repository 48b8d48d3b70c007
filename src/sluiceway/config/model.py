"""The gateway's configuration model: one YAML file, validated strictly.

Every section is a ``StrictModel``: unknown keys are errors. Sinks and sources are validated
by the config class their ``type`` names in ``registry.SINKS`` / ``registry.SOURCES``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from sluiceway.config.blocks import Destination
from sluiceway.config.types import ByteSize, Duration, SinkConfigBase, StrictModel
from sluiceway.record import valid_name
from sluiceway.sources.base import SourceConfigBase


class ServerConfig(StrictModel):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: ByteSize = 10 * 1024 * 1024
    idempotency_window: Duration = 24 * 3600.0
    streams: list[str] = []  # allowed stream names; empty = any valid name
    shutdown_timeout: Duration = 30.0
    token_cache_ttl: Duration = 5.0
    delivery_nice: int = Field(10, ge=0, le=19)  # CPU priority of delivery below ingest
    delivery_io_class: Literal["idle", "best-effort"] = "idle"  # its disk I/O waits for the workers'

    @field_validator("streams")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for s in v:
            if not valid_name(s):
                raise ValueError(f"stream name {s!r} must match [a-z0-9][a-z0-9_-]{{0,63}}")
        return v

    @field_validator("workers")
    @classmethod
    def _workers(cls, v: int) -> int:
        if not 1 <= v <= 64:
            raise ValueError("workers must be between 1 and 64")
        return v


class StoreConfig(StrictModel):
    url: str | None = None  # default: sqlite:///<data_dir>/sluice.db


class JournalConfig(StrictModel):
    engine: Literal["embedded"] = "embedded"
    segment_bytes: ByteSize = 64 * 1024 * 1024
    max_bytes: ByteSize = 1024 * 1024 * 1024
    when_full: Literal["reject"] = "reject"
    fsync: bool = True
    # Newest bytes of each partition left in the OS page cache; older synced pages are
    # dropped after their sync. null: leave it all to the kernel.
    page_cache_bytes: ByteSize | None = 32 * 1024 * 1024
    # Under load, a group commit starts no sooner than this after the previous one ended.
    commit_delay: Duration = Field(0.001, ge=0, le=0.1)
    # Zeros written ahead of the active segment's last frame, so that a sync of appended
    # frames rewrites allocated blocks and not the file's size (0: append, file grows per sync).
    preallocate_bytes: ByteSize = Field(4 * 1024 * 1024, ge=0)


class LogConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"
    access: bool = True  # one line per HTTP request


ArchiveFormat = Literal["jsonl.gz", "parquet"]  # sluiceway.archive.formats


class ArchiveJob(StrictModel):
    """Scheduled archiving: rows of ``table`` older than ``older_than``, every ``every``."""

    table: Literal["records", "feedback", "ldos", "logs"]
    older_than: Duration
    every: Duration = 86400.0
    format: ArchiveFormat | None = None  # default: archive.format

    @field_validator("older_than", "every")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v < 60:
            raise ValueError("must be at least 1m")
        return v


class ArchiveConfig(Destination):
    """Where ``sluice archive`` (and the scheduled jobs) put old rows: ``path`` or ``s3``
    (default ``<data_dir>/objects``), under ``prefix``, as ``format`` (``jsonl.gz`` or
    ``parquet``, which needs ``pip install 'sluiceway[parquet]'``)."""

    prefix: str = "archive"
    format: ArchiveFormat = "jsonl.gz"
    chunk_rows: int = Field(50_000, ge=100, le=1_000_000)
    jobs: list[ArchiveJob] = []


class Config(StrictModel):
    data_dir: Path = Path("./sluice-data")
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    journal: JournalConfig = JournalConfig()
    log: LogConfig = LogConfig()
    archive: ArchiveConfig = ArchiveConfig()
    sources: list[SourceConfigBase] = []
    sinks: list[SinkConfigBase] = []

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.data_dir / 'sluice.db'}"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"


DEFAULT_SINKS: list[dict[str, Any]] = [
    {"name": "objects", "type": "object_store"},
    {"name": "sql", "type": "sql"},
]
# Added to the defaults when a source needs a sink of that type (SourceConfigBase.needs_sinks).

TOP_KEYS = set(Config.model_fields)
