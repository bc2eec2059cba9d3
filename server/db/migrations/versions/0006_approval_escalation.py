"""Approval requests: what the deadline means, and escalation.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24

Adds ``on_timeout`` (``deny`` | ``expire``; existing rows get ``deny``, the workflow default),
``escalate_at``, ``escalation_approvers`` (JSON list, existing rows get ``[]``) and
``escalated_at`` to ``approval_requests``, and an index on ``(status, escalate_at)`` for the
escalation scan. Plain ``ALTER TABLE`` on SQLite, as in 0002.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("on_timeout", "escalate_at", "escalation_approvers", "escalated_at")
INDEX = "ix_approval_requests_status_escalate_at"


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", recreate="never") as batch:
        batch.add_column(
            sa.Column("on_timeout", sa.String(20), nullable=False, server_default="deny")
        )
        batch.add_column(sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("escalation_approvers", sa.JSON(), nullable=False, server_default="[]")
        )
        batch.add_column(sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(INDEX, "approval_requests", ["status", "escalate_at"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="approval_requests")
    with op.batch_alter_table("approval_requests", recreate="never") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
