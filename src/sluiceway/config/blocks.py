"""Config blocks shared by several sections (sinks now, bucket collectors later).

``S3Connection`` describes one bucket (and an optional key prefix inside it) on AWS S3 or an
S3-compatible store (SeaweedFS, MinIO, R2, …). Secrets are ``SecretStr``: they print as
``**********`` in reprs, errors and ``config show``.
"""

from __future__ import annotations

import re

from pydantic import SecretStr, field_validator, model_validator

from sluiceway.config.types import Duration, StrictModel

# Loose on purpose: S3-compatible stores accept more than AWS does (e.g. dots, uppercase on
# some). What we reject would fail on every store anyway.
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}\Z")


def check_bucket(name: str) -> str:
    if not _BUCKET_RE.match(name):
        raise ValueError(f"{name!r} is not a valid bucket name")
    return name


class S3Connection(StrictModel):
    """One S3 bucket, how to reach it and how to sign requests.

    Leaving ``access_key_id``/``secret_access_key`` unset uses the standard AWS environment
    (``AWS_ACCESS_KEY_ID``, instance profile, …). ``path_style`` and ``allow_http`` default
    sensibly for a custom ``endpoint``: path-style requests, and plain HTTP when the
    endpoint says ``http://``.
    """

    bucket: str
    prefix: str = ""  # key prefix inside the bucket, e.g. "sluice/prod"; no leading/trailing "/"
    endpoint: str | None = None  # None = AWS; else e.g. "http://127.0.0.1:8333"
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    path_style: bool | None = None  # default: True when endpoint is set
    allow_http: bool | None = None  # default: True when endpoint starts with http://
    # Client behaviour. Retries here are the HTTP client's own quick retries; the delivery
    # helper retries whole batches with its own backoff on top.
    max_retries: int = 3
    connect_timeout: Duration = 5.0
    timeout: Duration = 60.0  # per HTTP request (one multipart part, not the whole upload)

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, v: str) -> str:
        return check_bucket(v)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if v and any(part in ("", ".", "..") for part in v.split("/")):
            raise ValueError(f"prefix {v!r} has an empty, '.' or '..' segment")
        return v

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is None:
            return v
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"endpoint {v!r} must start with http:// or https://")
        return v

    @field_validator("max_retries")
    @classmethod
    def _retries(cls, v: int) -> int:
        if not 0 <= v <= 20:
            raise ValueError("max_retries must be between 0 and 20")
        return v

    @model_validator(mode="after")
    def _credentials(self) -> "S3Connection":
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both access_key_id and secret_access_key, or neither")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        return self

    @property
    def use_path_style(self) -> bool:
        return self.path_style if self.path_style is not None else self.endpoint is not None

    @property
    def use_http(self) -> bool:
        if self.allow_http is not None:
            return self.allow_http
        return bool(self.endpoint and self.endpoint.startswith("http://"))

    def describe(self) -> str:
        """Where this points, for logs and errors (never includes secrets)."""
        where = self.endpoint or f"s3 ({self.region})"
        return f"{where}/{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")


class Destination(StrictModel):
    """Where a sink writes objects: a local directory (``path``) or a bucket (``s3``); at
    most one. Neither: the sink's default directory (``<data_dir>/objects``)."""

    path: str | None = None
    s3: S3Connection | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> "Destination":
        if self.path is not None and self.s3 is not None:
            raise ValueError("set either path (local directory) or s3, not both")
        return self
