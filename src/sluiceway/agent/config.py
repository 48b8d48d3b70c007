"""``sluice ship`` configuration: the Lightspeed exporter's YAML keys, validated strictly.

Sources, highest first: CLI flags > ``INGRESS_SERVER_AUTH_TOKEN`` (the token only) > YAML.
The YAML gets ``${VAR}`` / ``${VAR:-default}`` interpolation; a key that a flag (or the
token variable) overrides is dropped before interpolation, so an unset variable in an
overridden key is no error. Unknown keys are errors that name the key and list the valid
ones; the original exporter's ``log_level``, ``rich_logs`` and ``mode: manual`` are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, SecretStr, ValidationError, field_validator

from sluiceway.config.interpolate import interpolate
from sluiceway.config.loader import format_errors, read_yaml_file
from sluiceway.config.types import ByteSize, Duration, StrictModel
from sluiceway.errors import ConfigError

TOKEN_ENV = "INGRESS_SERVER_AUTH_TOKEN"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
REQUIRED = {
    "data_dir": "--data-dir",
    "service_id": "--service-id",
    "ingress_server_url": "--ingress-server-url",
    "ingress_server_auth_token": f"${TOKEN_ENV} or --token",
}


def _subdir(name: str) -> str:
    name = name.rstrip("/")
    if not name or "/" in name or os.sep in name or name in (".", ".."):
        raise ValueError(f"{name!r} must be the name of a directory directly in data_dir")
    return name


SubdirName = Annotated[str, AfterValidator(_subdir)]


class ShipConfig(StrictModel):
    data_dir: Path
    service_id: str
    ingress_server_url: str
    ingress_server_auth_token: SecretStr
    identity_id: str = "lightspeed-exporter"
    collection_interval: Duration = 7200.0  # 0 = run one cycle and exit
    cleanup_after_send: bool = True
    ingress_connection_timeout: Duration = 30.0
    retry_interval: Duration = 300.0  # cap of the backoff after a transient failure; delay after a rejection
    retry_initial: Duration = 10.0  # first backoff ceiling (full jitter), doubled per failure
    allowed_subdirs: list[SubdirName] = []  # top-level directory names; [] = everything
    max_archive_bytes: ByteSize = 100 * 1024 * 1024  # per archive, summed over uncompressed file sizes
    settle_time: Duration = 1.0  # a file must be this old and unchanged this long to be collected
    # Accepted from the original exporter's files.
    log_level: str = "INFO"
    rich_logs: bool = False  # accepted, unused: colours and progress follow whether stderr is a terminal
    mode: str = "manual"

    @field_validator("data_dir")
    @classmethod
    def _dir(cls, v: Path) -> Path:
        if not v.is_dir():
            raise ValueError(f"{v} is not a directory" if v.exists() else f"directory {v} does not exist")
        return v

    @field_validator("service_id")
    @classmethod
    def _service(cls, v: str) -> str:
        if not v or not all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in v):
            raise ValueError(f"{v!r} must be lowercase letters, digits and '-' (it becomes "
                             "application/vnd.redhat.<service_id>.periodic+tar)")
        return v

    @field_validator("ingress_server_url")
    @classmethod
    def _url(cls, v: str) -> str:
        try:
            url = httpx.URL(v)
        except httpx.InvalidURL as e:
            raise ValueError(f"{v!r} is not a URL: {e}") from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"{v!r} must be an http:// or https:// URL")
        return v

    @field_validator("ingress_server_auth_token")
    @classmethod
    def _token(cls, v: SecretStr) -> SecretStr:
        s = v.get_secret_value()
        if not s.strip():
            raise ValueError("must not be empty")
        if any(c in s for c in "\r\n\0"):
            raise ValueError("must not contain line breaks")
        return v

    @field_validator("identity_id")
    @classmethod
    def _identity(cls, v: str) -> str:
        if not v or any(c.isspace() or not c.isprintable() for c in v):
            raise ValueError(f"{v!r} must be non-empty without spaces (it goes into the User-Agent after 'cluster/')")
        return v

    @field_validator("collection_interval", "settle_time")
    @classmethod
    def _not_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must not be negative")
        return v

    @field_validator("ingress_connection_timeout", "retry_interval", "retry_initial", "max_archive_bytes")
    @classmethod
    def _positive(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be greater than 0")
        return v

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        level = str(v).upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"{v!r} must be one of {', '.join(LOG_LEVELS)}")
        return level

    @field_validator("mode")
    @classmethod
    def _mode(cls, v: str) -> str:
        if v != "manual":
            raise ValueError(f"only 'manual' is supported (got {v!r}); set ingress_server_auth_token "
                             "and identity_id yourself")
        return v

    def public(self) -> dict[str, Any]:
        """The effective settings with the token masked (``--print-config-and-exit``)."""
        data = self.model_dump(mode="json")
        return dict(sorted(data.items()))


def load_ship_config(path: str | Path | None, env: Mapping[str, str] | None = None,
                     overrides: Mapping[str, Any] | None = None) -> ShipConfig:
    """YAML file (optional) → drop overridden keys → interpolate → token / CLI → validate."""
    env = os.environ if env is None else env
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    where = f"{path}:\n" if path is not None else ""
    tree = _read(Path(path)) if path is not None else {}
    env_token = env.get(TOKEN_ENV) or None
    if env_token and "ingress_server_auth_token" not in overrides:
        overrides = {**overrides, "ingress_server_auth_token": env_token}
    for key in overrides:
        tree.pop(key, None)
    try:
        tree = interpolate(tree, env)
    except ConfigError as e:
        raise ConfigError(f"{where}{e}") from None
    tree.update(overrides)
    for key in REQUIRED:
        if tree.get(key) == "":
            del tree[key]  # e.g. ${INGRESS_SERVER_AUTH_TOKEN:-} with the variable unset
    try:
        return ShipConfig.model_validate(tree)
    except ValidationError as e:
        lines = format_errors(e, ShipConfig, "").split("\n")
        for i, item in enumerate(e.errors()):
            key = str(item["loc"][0]) if item["loc"] else ""
            if item["type"] == "missing" and key in REQUIRED and i < len(lines):
                lines[i] = f"{key}: required (config key, or {REQUIRED[key]})"
        raise ConfigError(where + "\n".join(lines)) from None


def _read(p: Path) -> dict[str, Any]:
    return read_yaml_file(p)
