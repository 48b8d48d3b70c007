"""Feedback hub: tenants, per-tenant feedback sources (secrets encrypted), their cursors, and
the feedback table with its identity unique key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RecordId = sa.String(36).with_variant(postgresql.UUID(as_uuid=False), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "feedback_sources",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("settings", JSONDoc, nullable=False),
        sa.Column("secrets", sa.Text, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("interval_seconds", sa.Float, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("cursor", JSONDoc, nullable=False),
        sa.Column("last_run_at", TS, nullable=True),
        sa.Column("last_status", sa.Text, nullable=True),
        sa.UniqueConstraint("tenant", "name", name="uq_feedback_sources_tenant_name"),
    )
    op.create_table(
        "feedback",
        sa.Column("id", RecordId, primary_key=True),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("source_type", sa.String(32), nullable=False),
        sa.Column("source_instance", sa.Text, nullable=False, server_default=""),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("rating", sa.Integer, nullable=True),
        sa.Column("language", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=True),
        sa.Column("fetched_at", TS, nullable=False),
        sa.Column("metadata", JSONDoc, nullable=False),
        sa.UniqueConstraint("tenant_id", "source_type", "source_instance", "external_id",
                            name="uq_feedback_identity"),
    )
    op.create_index("ix_feedback_tenant_created", "feedback", ["tenant_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("feedback_sources")
    op.drop_table("tenants")
