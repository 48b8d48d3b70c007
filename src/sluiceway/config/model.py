"""The gateway's configuration model: one YAML file, validated strictly.

Every section is a ``StrictModel``: unknown keys are errors. Sinks and sources are validated
by the config class their ``type`` names in ``registry.SINKS`` / ``registry.SOURCES``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from sluiceway.config.blocks import Destination
from sluiceway.config.types import ByteSize, Duration, SinkConfigBase, StrictModel, parse_size
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
    delivery_nice: int = Field(19, ge=0, le=19)  # CPU priority of delivery below ingest
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


def _size_or_auto(v: Any) -> Any:
    if isinstance(v, str) and v.strip().lower() == "auto":
        return "auto"
    try:
        n = parse_size(v)
    except ValueError as e:
        raise ValueError(f"{e}, or auto") from None
    if n <= 0:
        raise ValueError("must be a positive size such as 4GiB, or auto")
    return n


AUTO_SHARE = 4  # ``max_bytes: auto`` takes 1/AUTO_SHARE of the file system's free space...
AUTO_MIN = 64 * 1024 * 1024  # ...but at least this per partition


class JetStreamConfig(StrictModel):
    """``journal.jetstream``: the NATS server of ``engine: jetstream`` (journal/jetstream.py)."""

    url: str = "nats://127.0.0.1:4222"  # comma-separated for a cluster
    stream_prefix: str = Field("SLUICE", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    subject_prefix: str = Field("sluice", pattern=r"^[A-Za-z0-9_-]{1,32}$")
    replicas: int = Field(1, ge=1, le=5)
    timeout: Duration = 10.0
    # The server's HTTP monitoring (``http: 8222`` in its config): when given, the gateway reads
    # its /varz at start and refuses a server that does not sync every write (sync_interval: always).
    monitor_url: str | None = Field(None, pattern=r"^https?://[^\s]+$")
    user: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None


class JournalConfig(StrictModel):
    engine: Literal["embedded", "jetstream"] = "embedded"
    jetstream: JetStreamConfig = JetStreamConfig()
    segment_bytes: ByteSize = 64 * 1024 * 1024
    # Undelivered bytes per partition before ingest answers 503. ``auto``: a quarter of the
    # space free on the journal's file system at start, split among the writing partitions.
    max_bytes: Annotated[int | Literal["auto"], BeforeValidator(_size_or_auto)] = "auto"
    when_full: Literal["reject"] = "reject"
    # An HTTP worker whose own partition is damaged (embedded journal): refuse to start, or
    # leave it for `sluice journal repair` and write to another partition.
    when_damaged: Literal["refuse", "continue"] = "refuse"
    fsync: bool = True
    # Newest bytes of each partition left in the OS page cache; older synced pages are
    # dropped after their sync. null: leave it all to the kernel.
    page_cache_bytes: ByteSize | None = 32 * 1024 * 1024
    # Under load, a group commit starts no sooner than this after the previous one ended.
    commit_delay: Duration = Field(0.001, ge=0, le=0.1)
    # Zeros written ahead of the active segment's last frame, so that a sync of appended
    # frames rewrites allocated blocks and not the file's size (0: append, file grows per sync).
    preallocate_bytes: ByteSize = Field(4 * 1024 * 1024, ge=0)

    def partition_bytes(self, journal_dir: Path, partitions: int) -> int:
        """``max_bytes`` of each partition: as configured, or for ``auto`` a quarter of the
        free space of the file system that holds (or will hold) ``journal_dir``, shared by
        ``partitions`` writers, at least ``AUTO_MIN``. Measured when called: call it once per
        start (``Config.resolve_journal``), so every process of a gateway agrees."""
        if self.max_bytes != "auto":
            return self.max_bytes
        d = Path(journal_dir).absolute()
        while not d.exists() and d != d.parent:
            d = d.parent
        return max(AUTO_MIN, shutil.disk_usage(d).free // AUTO_SHARE // max(1, partitions))


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

    def journal_max_bytes(self) -> int:
        """``journal.max_bytes`` of each partition, ``auto`` worked out: the writers are the
        HTTP workers, plus the delivering process when a background source (pulls, scans) runs.
        With ``engine: jetstream``, ``auto`` is -1: no limit of the gateway's own; the NATS
        server's storage limits apply."""
        if self.journal.engine == "jetstream" and self.journal.max_bytes == "auto":
            return -1
        writers = self.server.workers + any(s.background for s in self.sources)
        return self.journal.partition_bytes(self.journal_dir, writers)

    def resolve_journal(self) -> "Config":
        """A copy with ``journal.max_bytes`` fixed (see ``journal_max_bytes``): taken once at
        start and handed to every process, so they all enforce the same limit."""
        if self.journal.engine == "jetstream":
            return self  # nothing local to measure (``journal_max_bytes``)
        return self.model_copy(update={"journal": self.journal.model_copy(update={"max_bytes": self.journal_max_bytes()})})


DEFAULT_SINKS: list[dict[str, Any]] = [
    {"name": "objects", "type": "object_store"},
    {"name": "sql", "type": "sql"},
]
# Added to the defaults when a source needs a sink of that type (SourceConfigBase.needs_sinks).

TOP_KEYS = set(Config.model_fields)
