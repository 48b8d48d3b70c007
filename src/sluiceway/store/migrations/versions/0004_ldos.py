"""LDOs: edge artifacts (metadata + an optional file in the blob store), persisted.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

JSONDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ldos",
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
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("tenant", "client_id", name="uq_ldos_tenant_client_id"),
    )
    op.create_index("ix_ldos_tenant_created", "ldos", ["tenant", "created_at", "id"])


def downgrade() -> None:
    op.drop_table("ldos")
