"""Delivery states for sends of unknown outcome and alerts that expired (#9).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

`sending_at` is written (and committed) before a send and cleared with its outcome, so a
send a crash interrupted is known as one whose outcome is unknown. `uncertain_sends`
counts those sends; at most two are made, so Slack holds at most one duplicate.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
# Chained after the newest revision on main at the time (0008); re-chained at merge.
down_revision = "0004"
branch_labels = None
depends_on = None

STATES = "'pending', 'sent', 'failed', 'expired'"


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("uncertain_sends", sa.Integer(), nullable=False, server_default="0")
        )
        batch.drop_constraint("ck_deliveries_status", type_="check")
        batch.create_check_constraint("ck_deliveries_status", f"status IN ({STATES})")


def downgrade() -> None:
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'expired'")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint("ck_deliveries_status", type_="check")
        batch.create_check_constraint(
            "ck_deliveries_status", "status IN ('pending', 'sent', 'failed')"
        )
        batch.drop_column("uncertain_sends")
        batch.drop_column("sending_at")
