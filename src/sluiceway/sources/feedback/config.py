"""Configuration of the ``feedback`` source: webhooks, scheduled pulls, declared tenants."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import field_validator

from sluiceway.config.types import ByteSize, Duration, Name, StrictModel
from sluiceway.sources.base import SourceConfigBase

MIN_INTERVAL = 10.0  # seconds between pulls of one source: the bounds of ``interval``
MAX_INTERVAL = 366 * 86400.0  # a year: longer would overflow the scheduler's date arithmetic

class DeclaredSource(StrictModel):
    """A source declared in the file: created or refreshed in the store at every start."""

    name: Name
    type: str
    enabled: bool = True
    interval: Duration = 600.0
    settings: dict[str, Any] = {}
    secrets: dict[str, Any] = {}  # values usually ${VARS}; stored encrypted, never shown

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: float) -> float:
        if not MIN_INTERVAL <= v <= MAX_INTERVAL:  # also refuses NaN and infinity
            raise ValueError(f"must be at least {MIN_INTERVAL:g}s and at most 366d")
        return v


class DeclaredTenant(StrictModel):
    id: Name
    name: str | None = None
    sources: list[DeclaredSource] = []


class FeedbackSourceConfig(SourceConfigBase):
    type: Literal["feedback"] = "feedback"
    background: ClassVar[bool] = True
    scheduler: bool = True  # run scheduled pulls in this gateway (several gateways: one run each, locked)
    refresh_interval: Duration = 5.0  # how soon source changes in the store take effect
    http_timeout: Duration = 30.0  # per platform request
    max_attempts: int = 6  # per request, for timeouts, 5xx and 429s
    max_wait: Duration = 900.0  # longest rate-limit wait inside a run; longer → the run fails, retried later
    webhook_max_bytes: ByteSize = 1024 * 1024
    tenants: list[DeclaredTenant] = []

    def streams(self) -> list[str]:
        return ["feedback"]

    def needs_sinks(self) -> list[str]:
        return ["feedback"]
