"""The ops console's second round: a review's deadline and rejection reason
(``review_tasks``), the audit log of decisions (``audit_log``: who, when, why, what came
of it) and the console's sign-in sessions (``console_sessions``).

The bridge's tables (``bridge.reviews``, ``bridge.audit``, ``bridge.console``), in its
own branch of the migrations; a test checks they agree with the tables' definitions.

Revision ID: b0002
Revises: b0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core_saga.persistence import UTCDateTime

revision = "b0002"
down_revision = "b0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("review_tasks") as table:
        table.add_column(sa.Column("deadline", UTCDateTime, nullable=True))
        table.add_column(sa.Column("decision_reason", sa.Text, nullable=True))
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("correlation_id", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_correlation", "audit_log", ["correlation_id"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token_mac", sa.String(64), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.drop_table("audit_log")
    with op.batch_alter_table("review_tasks") as table:
        table.drop_column("decision_reason")
        table.drop_column("deadline")
