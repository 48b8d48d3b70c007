"""Feedback rows are edited in place (a review rewritten, a conversation answered): leave room
in each heap page (``fillfactor`` 70) so PostgreSQL can write the new version on the same page
as a HOT update, without new entries in the table's three indexes. No change on SQLite.

Pages written before this migration keep their old fill; new and rewritten pages use it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feedback SET (fillfactor = 70)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE feedback RESET (fillfactor)")
