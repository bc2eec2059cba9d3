"""Approval requests: the approvers snapshot, the one-time claim, the stored result.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Adds ``approvers`` (JSON list, existing rows get ``[]``), ``claimed_at`` and ``result`` (both
nullable) to ``approval_requests``. Frozen like every revision: nothing here imports the
current ``server.db.tables``.

SQLite goes through batch mode with ``recreate="never"``: the three columns are added and
dropped with plain ``ALTER TABLE`` (``DROP COLUMN`` needs SQLite 3.35+). Recreating the table
instead would drop ``approval_requests`` while foreign keys are on, and SQLite would cascade
that into ``approval_votes``, deleting every vote.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("approvers", "claimed_at", "result")


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", recreate="never") as batch:
        # A plain-string default (not sa.text) renders DEFAULT '[]' on both databases and
        # keeps SQLite on ALTER TABLE ADD COLUMN.
        batch.add_column(sa.Column("approvers", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("result", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", recreate="never") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
