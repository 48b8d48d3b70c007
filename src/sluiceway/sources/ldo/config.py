"""Configuration of the ``ldo`` receiver, and which attachments sink holds its files.

The files an LDO upload carries are delivered by an ``attachments`` sink; the receiver reads
them back from that sink's object store (``files_from``: the sink's name, or the only
attachments sink). ``sluice serve`` hands its HTTP workers the sinks' names and types only,
so the receiver resolves the sink where the whole configuration is at hand (the process that
builds the workers' configuration) and keeps it in the source config, which travels to the
workers with everything else (``resolve_files_sink``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import PrivateAttr, field_validator

from sluiceway.config.types import ByteSize, Name
from sluiceway.errors import ConfigError
from sluiceway.sources.base import SourceConfigBase

if TYPE_CHECKING:
    from sluiceway.sinks.attachments import AttachmentsSinkConfig


class LdoSourceConfig(SourceConfigBase):
    type: Literal["ldo"] = "ldo"
    path_prefix: str = ""  # e.g. /data-ingestion: the routes are served under it …
    serve_unprefixed: bool = True  # … and at /ingest/… as well (the original's paths)
    max_file_bytes: ByteSize = 5 * 1024**3  # per upload → 413
    max_metadata_bytes: ByteSize = 1024 * 1024  # the metadata part (and any other small part)
    stream: Name = "ldo"  # the stream of the one record per upload
    files_from: str | None = None  # the attachments sink to read files from; default: the only one
    _files_sink: Any = PrivateAttr(default=None)

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.rstrip("/")
        if v and (not v.startswith("/") or "{" in v or "//" in v):
            raise ValueError(f"path_prefix {v!r} must look like /data-ingestion (or be empty)")
        return v

    def prefixes(self) -> list[str]:
        out = [self.path_prefix] if self.path_prefix else []
        return out + [""] if self.serve_unprefixed or not out else out

    def streams(self) -> list[str]:
        return [self.stream]

    def needs_sinks(self) -> list[str]:
        return ["attachments"]

    def blob_streams(self) -> list[str]:
        return [self.stream]

    def check_sinks(self, sinks: list[Any]) -> None:
        resolve_files_sink(self, sinks)


def resolve_files_sink(config: LdoSourceConfig, sinks: list[Any]) -> "AttachmentsSinkConfig":
    """The attachments sink config the LDO files are read from (ConfigError when ambiguous,
    missing, or filtering out the LDO stream). Cached in ``config`` for the HTTP workers."""
    from sluiceway.sinks.attachments import AttachmentsSinkConfig

    where = f"sources.{config.name}"
    candidates = [s for s in sinks if s.type == "attachments"]
    names = ", ".join(s.name for s in candidates) or "none"
    if config.files_from is not None:
        chosen = [s for s in candidates if s.name == config.files_from]
        if not chosen:
            raise ConfigError(f"{where}.files_from: no attachments sink named {config.files_from!r}; "
                              f"attachments sinks: {names}")
    else:
        chosen = candidates
        if len(chosen) != 1:
            raise ConfigError(f"{where}: {'several' if chosen else 'no'} attachments sinks ({names}); "
                              "name the one that stores LDO files in files_from")
    sink = chosen[0]
    if isinstance(sink, AttachmentsSinkConfig):
        if not sink.takes(config.stream):
            raise ConfigError(f"{where}: attachments sink {sink.name!r} does not take stream {config.stream!r} "
                              f"(its streams: {', '.join(sink.streams)})")
        config._files_sink = sink
    if config._files_sink is None or config._files_sink.name != sink.name:
        raise ConfigError(f"{where}: the settings of attachments sink {sink.name!r} are not available here")
    return config._files_sink
