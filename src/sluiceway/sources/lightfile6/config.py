"""Configuration of the ``lightfile6`` receiver (inside a ``sluice serve`` config)."""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from sluiceway.config.types import ByteSize, Name
from sluiceway.sources.base import SourceConfigBase


class Lightfile6SourceConfig(SourceConfigBase):
    """``PUT /usage``, ``PUT /error``, ``PUT /specimen`` and ``GET /health`` as the Lightfile6
    Insights Gateway answers them, under ``path_prefix``."""

    type: Literal["lightfile6"] = "lightfile6"
    path_prefix: str = ""  # "" → /usage, /error, /specimen, /health at the root
    usage_stream: Name = "usage"
    error_stream: Name = "error"
    specimen_stream: Name = "specimen"
    raw_lines: bool = False  # payload = the bare report instead of {"user","received_at","report"}
    invalid_json: Literal["reject", "string"] = "reject"  # string: keep non-JSON reports as text
    max_report_bytes: ByteSize = 10 * 1024 * 1024
    max_specimen_bytes: ByteSize = 5 * 1024**3
    health: bool = True  # answer GET <prefix>/health with {"status":"healthy"}

    @field_validator("path_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.rstrip("/")
        if v and (not v.startswith("/") or "//" in v or any(c in v for c in "?#{} ")):
            raise ValueError(f"path_prefix {v!r} must look like /some/path (or be empty)")
        return v

    def streams(self) -> list[str]:
        return [self.usage_stream, self.error_stream, self.specimen_stream]

    def needs_sinks(self) -> list[str]:
        return ["attachments"]

    def blob_streams(self) -> list[str]:
        return [self.specimen_stream]
