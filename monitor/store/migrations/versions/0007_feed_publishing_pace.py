"""Feed publishing pace: what adaptive polling remembers between polls (issue #11).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03

A 304 carries no items and no ``<ttl>``, so the pace read from the last parsed document is
kept: the median gap between its items and the document's own refresh hint (ttl,
sy:updatePeriod/updateFrequency), both in seconds. NULL: not known yet.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("feeds", sa.Column("publish_gap", sa.Float(), nullable=True))
    op.add_column("feeds", sa.Column("refresh_hint", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("refresh_hint")
        batch.drop_column("publish_gap")
