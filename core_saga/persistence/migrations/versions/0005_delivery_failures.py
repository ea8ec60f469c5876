"""Count a message's handler failures in the store.

A worker used to dead-letter a failing message on the broker's receive count (SQS
``ApproximateReceiveCount``), and that count also grows when a worker is killed while
holding the message: a few crashes could spend a valid message's retries before its
handler had failed once. ``delivery_failures`` holds, per endpoint and message, how many
times its handler failed; the worker dead-letters on that count.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core_saga.persistence._schema import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivery_failures",
        sa.Column("endpoint", sa.String(200), primary_key=True),
        sa.Column("message_id", sa.String(100), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("first_at", UTCDateTime, nullable=False),
        sa.Column("last_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_delivery_failures_last_at", "delivery_failures", ["last_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_failures_last_at", table_name="delivery_failures")
    op.drop_table("delivery_failures")
