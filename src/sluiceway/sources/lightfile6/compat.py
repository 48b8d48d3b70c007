"""The Lightfile6 Insights Gateway's own configuration file, read as it was, run as sluiceway.

The file keeps its format (``cache_dir``, ``aws.*``, ``s3.*``, ``aggregation.*``) and gains
``${VAR}`` / ``${VAR:-default}`` interpolation. ``LIGHTFILE6_<KEY>`` environment variables
(``.`` → ``_``, e.g. ``LIGHTFILE6_S3_USAGE_BUCKET``) override any key, whether or not the file
has it (the original ignored variables for keys missing from the file). Validation is strict
and names the key. ``to_config`` turns it into a sluiceway ``Config``:

- the ``lightfile6`` receiver at the root paths; journal, blob spool and SQLite store under
  ``cache_dir``;
- sink ``usage`` / ``error``: gzip JSON Lines, one report per line, into the usage / error
  bucket under ``<prefix>YYYY/MM/DD/HH/YYYYMMDDHH.<hostname>.<batch>.jsonl.gz`` (hour of
  receipt; ``<batch>`` makes every upload's key unique), flushed every
  ``aggregation.<type>_interval``;
- sink ``specimens``: every specimen to ``<specimen_prefix><user>/YYYY/MM/DD/<base>.<ts><ext>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator

from sluiceway.config.blocks import check_bucket
from sluiceway.config.interpolate import interpolate
from sluiceway.config.loader import format_errors, read_yaml_file, validate_tree
from sluiceway.config.model import Config
from sluiceway.config.types import ByteSize, Duration, StrictModel
from sluiceway.errors import ConfigError

DEFAULT_CACHE_DIR = Path("/var/lib/lightfile6-insights-gateway")
ENV_PREFIX = "LIGHTFILE6_"
DEFAULT_INTERVAL = 600.0
REPORT_KEY = "{yyyy}/{mm}/{dd}/{hh}/{yyyy}{mm}{dd}{hh}.{hostname}.{batch}.jsonl.gz"


class AwsSection(StrictModel):
    region: str = "ap-northeast-1"
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    endpoint: str | None = None  # an S3-compatible store; implies path-style requests
    path_style: bool | None = None  # sluiceway addition: force path-style (or not)


class S3Section(StrictModel):
    usage_bucket: str = Field("", validate_default=True)
    error_bucket: str = Field("", validate_default=True)
    specimen_bucket: str = Field("", validate_default=True)
    usage_prefix: str = ""
    error_prefix: str = ""
    specimen_prefix: str = ""

    @field_validator("usage_bucket", "error_bucket", "specimen_bucket")
    @classmethod
    def _required(cls, v: str, info: Any) -> str:
        if not v:
            raise ValueError(f"{info.field_name.split('_')[0]} bucket is required")
        return check_bucket(v)


class AggregationSection(StrictModel):
    usage_interval: Duration = DEFAULT_INTERVAL
    error_interval: Duration = DEFAULT_INTERVAL
    raw_lines: bool = False  # sluiceway addition: write bare reports, like the original
    invalid_json: Literal["reject", "string"] = "reject"  # sluiceway addition

    @field_validator("usage_interval", "error_interval")
    @classmethod
    def _interval(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must not be negative")
        return v or DEFAULT_INTERVAL  # the original's rule: 0 means the default


class LimitsSection(StrictModel):
    """sluiceway addition: per-route body limits (413 above them)."""

    max_report_bytes: ByteSize = 10 * 1024 * 1024
    max_specimen_bytes: ByteSize = 5 * 1024**3


class Lightfile6File(StrictModel):
    cache_dir: Path = DEFAULT_CACHE_DIR
    aws: AwsSection = AwsSection()
    s3: S3Section  # load_file supplies {} when absent, so each missing bucket is named
    aggregation: AggregationSection = AggregationSection()
    limits: LimitsSection = LimitsSection()
    shutdown_timeout: Duration = 30.0  # sluiceway addition (the original's was fixed at 30 s)


def load_file(path: str | Path, env: Mapping[str, str]) -> Lightfile6File:
    p = Path(path)
    tree = read_yaml_file(p)
    tree = interpolate(tree, env)
    _apply_env(tree, env)
    if tree.get("s3") is None:
        tree["s3"] = {}
    try:
        return Lightfile6File.model_validate(tree)
    except ValidationError as e:
        raise ConfigError(f"{p}:\n" + format_errors(e, Lightfile6File, "")) from None


def _env_keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    """``LIGHTFILE6_S3_USAGE_BUCKET`` → ("s3", "usage_bucket") for every key of the file."""
    out: dict[str, tuple[str, ...]] = {}
    for name, field in model.model_fields.items():
        path = (*prefix, name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out.update(_env_keys(ann, path))
        else:
            out[ENV_PREFIX + "_".join(path).upper()] = path
    return out


def _apply_env(tree: dict[str, Any], env: Mapping[str, str]) -> None:
    for var, path in _env_keys(Lightfile6File).items():
        if var in env:
            node = tree
            for part in path[:-1]:
                if not isinstance(node.get(part), dict):
                    node[part] = {}
                node = node[part]
            node[path[-1]] = env[var]


def to_config(f: Lightfile6File, *, port: int, host: str = "0.0.0.0", workers: int = 1) -> Config:
    def s3(bucket: str, prefix: str) -> dict[str, Any]:
        conn: dict[str, Any] = {"bucket": bucket, "prefix": prefix.strip("/"), "region": f.aws.region}
        if f.aws.endpoint:
            conn["endpoint"] = f.aws.endpoint
        if f.aws.path_style is not None:
            conn["path_style"] = f.aws.path_style
        if f.aws.access_key_id and f.aws.secret_access_key:  # static keys only when both are set
            conn["access_key_id"] = f.aws.access_key_id
            conn["secret_access_key"] = f.aws.secret_access_key.get_secret_value()
        return conn

    def reports(name: str, bucket: str, prefix: str, interval: float) -> dict[str, Any]:
        return {
            "name": name, "type": "object_store", "streams": [name], "s3": s3(bucket, prefix),
            "key_template": REPORT_KEY, "format": "payload", "content_type": "application/gzip",
            "content_encoding": "none",
            "batch": {"max_age": interval, "max_records": 100_000, "max_bytes": 64 * 1024 * 1024},
        }

    agg = f.aggregation
    tree = {
        "data_dir": str(f.cache_dir),
        "server": {"host": host, "port": port, "workers": workers, "shutdown_timeout": f.shutdown_timeout,
                   "max_body_bytes": max(f.limits.max_report_bytes, 1)},
        "sources": [{
            "name": "lightfile6", "type": "lightfile6", "raw_lines": agg.raw_lines, "invalid_json": agg.invalid_json,
            "max_report_bytes": f.limits.max_report_bytes, "max_specimen_bytes": f.limits.max_specimen_bytes,
        }],
        "sinks": [
            reports("usage", f.s3.usage_bucket, f.s3.usage_prefix, agg.usage_interval),
            reports("error", f.s3.error_bucket, f.s3.error_prefix, agg.error_interval),
            {"name": "specimens", "type": "attachments", "streams": ["specimen"],
             "s3": s3(f.s3.specimen_bucket, f.s3.specimen_prefix), "key_template": "{name}",
             "batch": {"max_records": 64, "max_age": 0.2}},
        ],
    }
    return validate_tree(tree)


def load_lightfile6(path: str | Path, env: Mapping[str, str], *, port: int, host: str = "0.0.0.0",
                    workers: int = 1) -> Config:
    return to_config(load_file(path, env), port=port, host=host, workers=workers)
