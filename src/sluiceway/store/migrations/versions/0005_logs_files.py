"""Log files: the collectors' per-file state (``files``) and normalised log lines (``logs``).

On PostgreSQL ``logs`` is partitioned by ``time``: a TimescaleDB hypertable (1-day chunks)
when that extension is installed in the database, else native ``PARTITION BY RANGE (time)``
whose daily partitions the ``logs`` sink creates ahead of its inserts, in the schema
``sluice_log_partitions`` (so they stay out of the way of schema tools). SQLite: a plain
table with the same columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RecordId = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")
TS = sa.DateTime(timezone=True)
PARTITION_SCHEMA = "sluice_log_partitions"


def _log_columns() -> list[sa.Column]:
    return [
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("id", RecordId, nullable=False),
        sa.Column("level", sa.String(32), nullable=True),
        sa.Column("severity", sa.SmallInteger, nullable=True),
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
    ]


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("location", sa.Text, nullable=False),  # s3://bucket/prefix or a directory
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),  # ETag (S3) or inode-mtime-size (local)
        sa.Column("size", sa.BigInteger, nullable=True),
        sa.Column("modified_at", TS, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claim", sa.String(36), nullable=True),
        sa.Column("lease_until", TS, nullable=True),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("record_count", sa.BigInteger, nullable=True),
        sa.Column("bad_line_count", sa.BigInteger, nullable=True),
        sa.Column("bad_lines", JSONDoc, nullable=True),
        sa.Column("discovered_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("source", "location", "key", name="pk_files"),
    )
    op.create_index("ix_files_source_status", "files", ["source", "location", "status"])

    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        op.create_table("logs", *_log_columns())
    else:
        timescale = bind.execute(sa.text("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")).first()
        if timescale:
            op.create_table("logs", *_log_columns())
            op.execute("SELECT create_hypertable('logs', 'time', chunk_time_interval => INTERVAL '1 day')")
        else:
            op.create_table("logs", *_log_columns(), postgresql_partition_by="RANGE (time)")
            op.execute(f"CREATE SCHEMA IF NOT EXISTS {PARTITION_SCHEMA}")
    op.create_index("ix_logs_tenant_time", "logs", ["tenant", "time", "id"])


def downgrade() -> None:
    op.drop_table("logs")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP SCHEMA IF EXISTS {PARTITION_SCHEMA} CASCADE")
    op.drop_table("files")
