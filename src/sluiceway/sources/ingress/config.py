"""Configuration of the ``ingress`` receiver (Red Hat insights-ingress compatible uploads)."""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import field_validator

from sluiceway.config.types import ByteSize, Name, StrictModel, parse_size
from sluiceway.record import valid_name
from sluiceway.sources.base import SourceConfigBase

SERVICE_RE = re.compile(r"[a-z0-9-]+\Z")
DEFAULT_MOUNTS = ["/api/ingress/v1", "/r/insights/platform/ingress/v1"]


class ArchiveLimits(StrictModel):
    max_members: int = 50_000
    max_member_bytes: ByteSize = 100 * 1024 * 1024
    max_uncompressed_bytes: ByteSize = 1024**3
    max_ratio: float = 200.0


class IngressSourceConfig(SourceConfigBase):
    type: Literal["ingress"] = "ingress"
    mounts: list[str] = DEFAULT_MOUNTS
    # Services allowed to upload (INGRESS_VALID_UPLOAD_TYPES); a comma-separated string works too.
    valid_upload_types: list[str] = ["ols", "rhos-lightspeed", "ocm-assisted-chat"]
    max_size: ByteSize = 100 * 1024 * 1024  # per upload (INGRESS_DEFAULTMAXSIZE)
    max_size_map: dict[str, ByteSize] = {}  # per service (INGRESS_MAXSIZEMAP)
    deny_listed_orgids: list[str] = []  # → 403
    tokens: bool = True  # accept sluiceway tokens (Authorization: Bearer); org = the token's tenant
    trust_identity_header: bool = False  # believe x-rh-identity (only behind an authenticating proxy)
    upload_stream: Name = "ingress"  # the stream of the one record per upload (it carries the archive)
    extract: bool = True  # every JSON document in the archive becomes a record in stream <service>
    archive: ArchiveLimits = ArchiveLimits()

    @field_validator("valid_upload_types", "deny_listed_orgids", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return v

    @field_validator("valid_upload_types")
    @classmethod
    def _services(cls, v: list[str]) -> list[str]:
        for s in v:
            if not SERVICE_RE.match(s) or not valid_name(s):
                raise ValueError(f"service {s!r} must match [a-z0-9][a-z0-9-]{{0,63}}")
        return v

    @field_validator("max_size_map", mode="before")
    @classmethod
    def _sizes(cls, v: Any) -> Any:
        if isinstance(v, str):  # INGRESS_MAXSIZEMAP is JSON: {"qpc":"157286400"}
            try:
                v = orjson.loads(v)
            except orjson.JSONDecodeError as e:
                raise ValueError(f"max_size_map must be a mapping or JSON object: {e}") from None
        if isinstance(v, dict):
            return {k: parse_size(x) for k, x in v.items()}
        return v

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, v: list[str]) -> list[str]:
        out = []
        for m in v:
            m = m.rstrip("/")
            if not m.startswith("/") or "{" in m or "//" in m:
                raise ValueError(f"mount {m!r} must look like /api/ingress/v1")
            out.append(m)
        if not out:
            raise ValueError("at least one mount is needed")
        return out

    def limit_for(self, service: str) -> int:
        return self.max_size_map.get(service, self.max_size)

    def streams(self) -> list[str]:
        return [self.upload_stream, *self.valid_upload_types]

    def needs_sinks(self) -> list[str]:
        return ["attachments"]

    def blob_streams(self) -> list[str]:
        return [self.upload_stream]
