"""The store's tables (SQLAlchemy Core), one schema for SQLite and PostgreSQL.

Portable column types:

* ``RecordId``: a UUIDv7 string. Native ``uuid`` on PostgreSQL, ``VARCHAR(36)`` (canonical
  text, which sorts like the uuid) on SQLite. Values are always ``str`` in Python.
* ``UTCDateTime``: ``timestamptz`` on PostgreSQL; on SQLite SQLAlchemy's ISO text without
  offset, written in UTC. Binds must be tz-aware (naive ones are rejected); results are
  always tz-aware UTC on both dialects.
* ``JSONDoc``: ``jsonb`` on PostgreSQL, JSON text on SQLite.

Changing a table means a new Alembic revision in ``migrations/versions``; the tables here
describe the schema at head and are what queries are built from.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

UTC = timezone.utc

RecordId = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A tz-aware UTC datetime on both dialects."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store only takes tz-aware times")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores "YYYY-MM-DD HH:MM:SS.ffffff" text, always in UTC, so that text
            # order is time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = sa.MetaData()

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", RecordId, primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("stream", sa.String(64), nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("event_time", UTCDateTime, nullable=True),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("payload", JSONDoc, nullable=False),
    sa.Column("attachments", JSONDoc, nullable=False),
    sa.Index("ix_records_tenant_stream_id", "tenant", "stream", "id"),
)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("scopes", sa.Text, nullable=False),  # JSON array of strings, sorted
    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index("ix_tokens_tenant", "tenant"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("sink", sa.String(128), nullable=False),
    sa.Column("partition", sa.String(128), nullable=False),
    sa.Column("offset", sa.BigInteger, nullable=False),
    sa.Column("record_id", sa.String(36), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="dead"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_dead_letters_sink_status_id", "sink", "status", "id"),
)

idempotency = sa.Table(
    "idempotency",
    metadata,
    sa.Column("tenant", sa.String(64), primary_key=True),
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("response", sa.LargeBinary, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Index("ix_idempotency_expires_at", "expires_at"),
)

uploads = sa.Table(
    "uploads",
    metadata,
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # accepted | rejected
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("partition", sa.String(128), nullable=True),  # journal range of its records
    sa.Column("first_offset", sa.BigInteger, nullable=True),
    sa.Column("last_offset", sa.BigInteger, nullable=True),
    sa.Column("info", JSONDoc, nullable=False),  # service, org, cluster, size, object, records, …
    sa.Index("ix_uploads_tenant_received_at", "tenant", "received_at"),
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

feedback_sources = sa.Table(
    "feedback_sources",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),  # playstore | x | discourse | intercom | webhook
    sa.Column("settings", JSONDoc, nullable=False),  # non-secret settings (package name, query, base URL, …)
    sa.Column("secrets", sa.Text, nullable=True),  # encrypted JSON (secrets.SecretBox)
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("interval_seconds", sa.Float, nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),  # config (bootstrapped from the file) | api
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("cursor", JSONDoc, nullable=False),  # the connector's high-water mark
    sa.Column("last_run_at", UTCDateTime, nullable=True),
    sa.Column("last_status", sa.Text, nullable=True),
    sa.UniqueConstraint("tenant", "name", name="uq_feedback_sources_tenant_name"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", RecordId, primary_key=True),  # uuid5 of the four identity parts
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("source_type", sa.String(32), nullable=False),
    sa.Column("source_instance", sa.Text, nullable=False, server_default=""),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=True),
    sa.Column("body", sa.Text, nullable=True),
    sa.Column("rating", sa.Integer, nullable=True),
    sa.Column("language", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=True),
    sa.Column("fetched_at", UTCDateTime, nullable=False),
    sa.Column("metadata", JSONDoc, nullable=False),
    sa.UniqueConstraint("tenant_id", "source_type", "source_instance", "external_id", name="uq_feedback_identity"),
    sa.Index("ix_feedback_tenant_created", "tenant_id", "created_at", "id"),
)

ldos = sa.Table(
    "ldos",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),  # ldo_<12 hex>_<epoch>
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("client_id", sa.Text, nullable=True),  # the caller's ldo_id, unique per tenant
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("filename", sa.Text, nullable=True),
    sa.Column("content_type", sa.Text, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("sha256", sa.String(64), nullable=True),
    sa.Column("object_key", sa.Text, nullable=True),  # where the file is in the object store
    sa.Column("metadata", JSONDoc, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("tenant", "client_id", name="uq_ldos_tenant_client_id"),
    sa.Index("ix_ldos_tenant_created", "tenant", "created_at", "id"),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("source", sa.String(64), nullable=False),  # the collector source's name
    sa.Column("location", sa.Text, nullable=False),  # s3://bucket/prefix or a directory
    sa.Column("key", sa.Text, nullable=False),  # relative to the location
    sa.Column("version", sa.Text, nullable=False),  # ETag (S3) or inode-mtime-size (local)
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("modified_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending | processing | completed | failed | parked
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("claim", sa.String(36), nullable=True),  # the worker's claim while processing
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("record_count", sa.BigInteger, nullable=True),
    sa.Column("bad_line_count", sa.BigInteger, nullable=True),
    sa.Column("bad_lines", JSONDoc, nullable=True),  # the first bad lines: [{"line", "error"}]
    sa.Column("discovered_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.PrimaryKeyConstraint("source", "location", "key", name="pk_files"),
    sa.Index("ix_files_source_status", "source", "location", "status"),
)

# On PostgreSQL partitioned by range of time (daily partitions, created by the logs sink) or
# a TimescaleDB hypertable: see migration 0005.
logs = sa.Table(
    "logs",
    metadata,
    sa.Column("tenant", sa.String(64), nullable=False),
    sa.Column("time", UTCDateTime, nullable=False),
    sa.Column("id", RecordId, nullable=False),  # the record id: stable per file version and line
    sa.Column("level", sa.String(32), nullable=True),
    sa.Column("severity", sa.SmallInteger, nullable=True),  # pino's number for the level
    sa.Column("method", sa.String(16), nullable=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("query", JSONDoc, nullable=True),
    sa.Column("headers", JSONDoc, nullable=True),
    sa.Column("context", sa.Text, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    sa.Column("auth_user_id", sa.Text, nullable=True),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("hostname", sa.Text, nullable=True),
    sa.Column("remote_address", sa.Text, nullable=True),
    sa.Column("remote_port", sa.Integer, nullable=True),
    sa.Column("processing_time_ms", sa.Float, nullable=True),
    sa.Column("cache_hit", sa.Boolean, nullable=True),
    sa.Column("document_count", sa.Integer, nullable=True),
    sa.Column("params", JSONDoc, nullable=True),
    sa.Column("file", sa.Text, nullable=True),
    sa.Column("line", sa.Integer, nullable=True),
    sa.Column("raw", JSONDoc, nullable=False),
    sa.PrimaryKeyConstraint("time", "id", name="pk_logs"),
    sa.Index("ix_logs_tenant_time", "tenant", "time", "id"),
)

ALL_TABLES = (records, tokens, dead_letters, idempotency, uploads, tenants, feedback_sources, feedback, ldos,
              files, logs)
