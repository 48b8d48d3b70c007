"""Uploads: one row per archive upload (ingress), for its track endpoint.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("request_id", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("partition", sa.String(128), nullable=True),
        sa.Column("first_offset", sa.BigInteger, nullable=True),
        sa.Column("last_offset", sa.BigInteger, nullable=True),
        sa.Column("info", JSONDoc, nullable=False),
    )
    op.create_index("ix_uploads_tenant_received_at", "uploads", ["tenant", "received_at"])


def downgrade() -> None:
    op.drop_table("uploads")
