"""The review tasks table: one row per ReviewTask the ManualReview workflow raised, its
task token (stored, never shown), status and decision.

Databases migrated before the table moved to this branch have it already (core_saga's
revision 0002 made it): then this revision adopts it as it is.

Revision ID: b0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core_saga.persistence import UTCDateTime

revision = "b0001"
down_revision = None
branch_labels = ("bridge",)
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("review_tasks"):
        return
    op.create_table(
        "review_tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("handoff_id", sa.String(100), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=False),
        sa.Column("saga_type", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("escalated", sa.Boolean, nullable=False),
        sa.Column("execution_arn", sa.String(2048), nullable=False),
        sa.Column("task_token", sa.Text, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_review_tasks_status", "review_tasks", ["status", "created_at"])
    op.create_index("ix_review_tasks_correlation", "review_tasks", ["correlation_id"])
    op.create_index("ix_review_tasks_handoff", "review_tasks", ["handoff_id"])


def downgrade() -> None:
    op.drop_table("review_tasks")
