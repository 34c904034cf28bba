"""Retention: when an article was last in its feed, and when each feed last changed (#11).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03

Pruning an article its feed still carries would make the next poll store and alert on
it again, so retention needs to know what each feed still has.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("last_changed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("articles", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("last_changed_at")
