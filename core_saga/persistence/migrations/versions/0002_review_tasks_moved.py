"""Kept empty: the review tasks table moved to the bridge's own migrations.

It once created ``review_tasks`` in core_saga's branch. That table belongs to
``bridge.reviews``, whose branch (``bridge``) now creates it — or adopts it where this
revision made it before. The revision stays so that databases stamped ``0002`` upgrade.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
