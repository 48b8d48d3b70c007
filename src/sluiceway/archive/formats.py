"""File formats of archive chunks: how rows become one object, and how many rows an object
holds when it is read back for verification.

- ``jsonl.gz`` (default): gzip JSON Lines, one row per line, times as RFC 3339 UTC strings,
  JSON columns as nested JSON. Needs nothing beyond the base install.
- ``parquet``: one Parquet file (zstd), its Arrow schema derived from the table's columns:
  times as ``timestamp[us, UTC]``, integers, floats and booleans as such, ids and text as
  strings, JSON columns as JSON text (Parquet has no JSON type; readers such as DuckDB,
  Athena or pandas parse it with their JSON functions). Needs ``pyarrow``
  (``pip install 'sluiceway[parquet]'``).

A chunk's manifest names its format, so verification reads an object the way it was written
even if the configured format changed in between.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, get_args

import orjson
import sqlalchemy as sa

from sluiceway.config.model import ArchiveFormat
from sluiceway.sinks.encoding import JSONL_CONTENT_TYPE, gzip_lines
from sluiceway.store.db import rfc3339

FORMATS: tuple[str, ...] = get_args(ArchiveFormat)


def _json(v: Any) -> Any:
    if isinstance(v, datetime):
        return rfc3339(v)
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, (bytes, memoryview)):
        return bytes(v).hex()
    if isinstance(v, Decimal):
        return str(v)
    return v


class JsonLines:
    extension = "jsonl.gz"
    content_type = JSONL_CONTENT_TYPE  # gzip-compressed, as the extension says

    def encode(self, table: sa.Table, rows: list[dict[str, Any]]) -> bytes:
        return gzip_lines([orjson.dumps({k: _json(v) for k, v in r.items()}, default=str) for r in rows])

    def count(self, data: bytes) -> int:
        return sum(1 for line in gzip.decompress(data).split(b"\n") if line)


def _pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401 - the submodule must be importable too
    except ImportError:
        raise ValueError("archive format 'parquet' needs pyarrow: pip install 'sluiceway[parquet]'") from None
    return pyarrow


def _text(v: Any) -> str | None:
    return None if v is None else str(v)


def _json_text(v: Any) -> str | None:
    return None if v is None else orjson.dumps(v, default=str).decode()


def _blob(v: Any) -> bytes | None:
    return None if v is None else bytes(v)


def _same(v: Any) -> Any:
    return v


def _column(pa: Any, column: sa.Column) -> tuple[Any, Callable[[Any], Any]]:
    """(Arrow type, value conversion) for one column of a store table."""
    t = column.type
    t = getattr(t, "impl", t)  # TypeDecorator → what it stores
    if isinstance(t, sa.JSON):
        return pa.string(), _json_text
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us", tz="UTC"), _same
    if isinstance(t, sa.Boolean):
        return pa.bool_(), _same
    if isinstance(t, sa.SmallInteger):
        return pa.int16(), _same
    if isinstance(t, sa.Integer):  # Integer, BigInteger
        return pa.int64(), _same
    if isinstance(t, sa.Float):
        return pa.float64(), _same
    if isinstance(t, sa.LargeBinary):
        return pa.binary(), _blob
    return pa.string(), _text  # String, Text, UUID ids, Numeric (as exact text)


class Parquet:
    extension = "parquet"
    content_type = "application/vnd.apache.parquet"

    def encode(self, table: sa.Table, rows: list[dict[str, Any]]) -> bytes:
        pa = _pyarrow()
        fields, arrays = [], []
        for column in table.columns:
            kind, convert = _column(pa, column)
            fields.append(pa.field(column.name, kind, nullable=column.nullable))
            arrays.append(pa.array([convert(r[column.name]) for r in rows], type=kind))
        buf = io.BytesIO()
        pa.parquet.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), buf, compression="zstd")
        return buf.getvalue()

    def count(self, data: bytes) -> int:
        pa = _pyarrow()
        return pa.parquet.ParquetFile(pa.BufferReader(data)).metadata.num_rows


def get_format(name: str) -> JsonLines | Parquet:
    if name == "jsonl.gz":
        return JsonLines()
    if name == "parquet":
        _pyarrow()  # refuse early, before any row is exported
        return Parquet()
    raise ValueError(f"unknown archive format {name!r}; formats: {', '.join(FORMATS)}")
