"""Settings every collector (``bucket``, ``directory``) shares."""

from __future__ import annotations

import abc
from typing import ClassVar

from pydantic import field_validator, model_validator

from sluiceway.config.types import ByteSize, Duration, Name
from sluiceway.logs.decoders import CompressionName, DecoderName
from sluiceway.sources.base import SourceConfigBase


class CollectorConfig(SourceConfigBase):
    background: ClassVar[bool] = True
    stream: Name = "log"  # records go to this stream (payload: the file's record + "_file")
    decoder: DecoderName = "auto"  # auto | ndjson | json_array | json_object
    compression: CompressionName = "auto"  # auto (.gz or gzip magic) | gzip | none
    include: list[str] = ["*"]  # glob patterns on the key (relative to prefix / directory)
    exclude: list[str] = [".*", "*/.*", "*.tmp", "*.part", "*.partial"]
    scan_interval: Duration = 30.0  # list the files this often
    min_age: Duration = 0.0  # skip files modified more recently than this (still being written)
    concurrency: int = 4  # files processed at once
    batch_records: int = 1000  # records per journal append
    chunk_bytes: ByteSize = 1024 * 1024  # read size
    max_item_bytes: ByteSize = 16 * 1024 * 1024  # largest line / array element / document
    lease: Duration = 300.0  # a file "processing" longer than this (without renewal) is taken back
    max_attempts: int = 5  # then "parked"
    retry_initial: Duration = 30.0  # backoff before retrying a failed file …
    retry_max: Duration = 3600.0  # … doubling up to this
    max_bad_share: float = 0.1  # more bad lines than this share of a file fails the file

    def streams(self) -> list[str]:
        return [self.stream]

    def needs_sinks(self) -> list[str]:
        return ["logs"] if self.stream == "log" else []

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """What the ``files`` table records as the location (bucket URL or directory)."""

    @field_validator("concurrency", "batch_records", "max_attempts")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be at least 1")
        return v

    @field_validator("max_bad_share")
    @classmethod
    def _share(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError("must be between 0 and 1")
        return v

    @model_validator(mode="after")
    def _times(self) -> "CollectorConfig":
        if self.scan_interval < 0.05 or self.lease < 1:
            raise ValueError("scan_interval must be at least 50ms and lease at least 1s")
        return self
