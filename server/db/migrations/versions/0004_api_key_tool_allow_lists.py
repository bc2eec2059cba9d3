"""API keys: the tool allow-list.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Adds ``tools`` (a JSON list of glob patterns over ``<server>__<tool>``; existing keys get
``[]``, which means every tool, as before) to ``api_keys``. Plain ``ALTER TABLE`` on SQLite,
as in 0002.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", recreate="never") as batch:
        batch.add_column(sa.Column("tools", sa.JSON(), nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", recreate="never") as batch:
        batch.drop_column("tools")
