"""Feed host signals: the URL a feed moved to, its failing run, 404s and attention reason.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Columns are added one by one (SQLite's ADD COLUMN), so existing feeds keep their state.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("fetch_url", sa.Text(), nullable=True))
    op.add_column("feeds", sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "feeds",
        sa.Column("not_found_count", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("feeds", sa.Column("attention", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("attention")
        batch.drop_column("not_found_count")
        batch.drop_column("failing_since")
        batch.drop_column("fetch_url")
