"""Fewer, better alerts (#9): silences, digests and the matches they hold back.

Revision ID: 0006
Revises: 0003
Create Date: 2026-12-03

Additive: three new tables; deliveries are untouched, so an immediate alert is
delivered exactly as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0003"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=True),
        sa.Column("feed_url", sa.Text(), nullable=True),
        sa.Column("domain", sa.Text(), nullable=True),
        sa.Column("channel", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.Column("removed_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_table(
        "digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _utc(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("sent_at", _utc(), nullable=True),
        sa.Column("reference", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')", name="ck_digests_status"),
        sa.PrimaryKeyConstraint("id", name="pk_digests"),
    )
    op.create_index("ix_digests_status_next_attempt_at", "digests", ["status", "next_attempt_at"])
    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Text(), nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("silence_id", sa.Integer(), nullable=True),
        sa.Column("held_at", _utc(), nullable=False),
        sa.Column("release_at", _utc(), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("released_at", _utc(), nullable=True),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name="fk_holds_article_id_articles",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["silence_id"], ["silences.id"], name="fk_holds_silence_id_silences"
        ),
        sa.ForeignKeyConstraint(["digest_id"], ["digests.id"], name="fk_holds_digest_id_digests"),
        sa.PrimaryKeyConstraint("id", name="pk_holds"),
        sa.UniqueConstraint("article_id", "rule_id", name="uq_holds_article_id_rule_id"),
    )
    op.create_index("ix_holds_reason_released_at", "holds", ["reason", "released_at"])


def downgrade() -> None:
    op.drop_table("holds")
    op.drop_table("digests")
    op.drop_table("silences")
