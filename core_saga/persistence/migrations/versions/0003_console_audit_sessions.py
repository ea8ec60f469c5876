"""The ops console's second round: a review's deadline and rejection reason
(``review_tasks``), the audit log of decisions (``audit_log``: who, when, why, what came
of it) and the console's sign-in sessions (``console_sessions``).

These tables belong to the bridge (``bridge.reviews``, ``bridge.audit``,
``bridge.console``); the migration ships here so that one ``stepsaga migrate`` builds
everything a deployment stores. Written out rather than imported (core_saga never
imports the bridge); a test checks the two agree.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core_saga.persistence._schema import UTCDateTime

revision = "0003"
down_revision = "0002"
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
