"""Drop the index on the instances' state, so that a transition is a HOT update.

Every transition changes ``state`` and ``updated_at``; while an index held them, each
update on PostgreSQL wrote a new entry in that index and in the primary key, and the
hot rows' index pages filled with dead entries. Without it the update changes no
indexed column and stays on its page (a HOT update). The console's queries by state
scan the table instead (docs/performance.md says what it cost and what it saves).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_saga_instances_state", table_name="saga_instances")


def downgrade() -> None:
    op.create_index("ix_saga_instances_state", "saga_instances",
                    ["saga_type", "state", "updated_at"])
