"""Initial schema: records, tokens, dead letters, idempotency.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RecordId = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")
JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", RecordId, primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("event_time", TS, nullable=True),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("payload", JSONDoc, nullable=False),
        sa.Column("attachments", JSONDoc, nullable=False),
    )
    op.create_index("ix_records_tenant_stream_id", "records", ["tenant", "stream", "id"])

    op.create_table(
        "tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_tokens_tenant", "tokens", ["tenant"])

    op.create_table(
        "dead_letters",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sink", sa.String(128), nullable=False),
        sa.Column("partition", sa.String(128), nullable=False),
        sa.Column("offset", sa.BigInteger, nullable=False),
        sa.Column("record_id", sa.String(36), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="dead"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_dead_letters_sink_status_id", "dead_letters", ["sink", "status", "id"])

    op.create_table(
        "idempotency",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("response", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_idempotency_expires_at", "idempotency", ["expires_at"])


def downgrade() -> None:
    op.drop_table("idempotency")
    op.drop_table("dead_letters")
    op.drop_table("tokens")
    op.drop_table("records")
