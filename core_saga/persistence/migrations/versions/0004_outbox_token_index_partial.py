"""Index only the outbox rows that are timers by their schedule token.

The index on ``schedule_token`` serves one query, cancelling timers by token, whose
condition (``schedule_token = …``) rules out NULL; yet it held an entry for every
outbox row, and most rows are not timers (their token is NULL). A partial index keeps
the timers' entries alone: a sent message no longer writes one on insert, nor again
when it is marked dispatched (that update changes a column a partial index's condition
names, so it is never a HOT update and every index gets a new entry).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_outbox_token", table_name="outbox")
    timers = sa.text("schedule_token IS NOT NULL")
    op.create_index("ix_outbox_token", "outbox", ["schedule_token"],
                    postgresql_where=timers, sqlite_where=timers)


def downgrade() -> None:
    op.drop_index("ix_outbox_token", table_name="outbox")
    op.create_index("ix_outbox_token", "outbox", ["schedule_token"])
