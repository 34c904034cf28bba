"""Story clusters: which story an article belongs to, so threads survive a restart (#10).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

The cluster id is the row id of the story's first article; NULL for articles stored
before clustering (or with it turned off), which never join a story.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("articles", sa.Column("cluster_id", sa.Integer(), nullable=True))
    op.create_index("ix_articles_cluster_id", "articles", ["cluster_id"])


def downgrade() -> None:
    op.drop_index("ix_articles_cluster_id", table_name="articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("cluster_id")
