"""Feed leases: which worker's cycle holds a feed, and until when (issue #11).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Kept apart from next_poll_at, so a lease never hides a feed's schedule and a feed that
is leased can be told from one that is not due.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("feeds", sa.Column("leased_by", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("leased_by")
        batch.drop_column("leased_until")
