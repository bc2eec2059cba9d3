"""Tools: the full definition as last seen, and the definition that was pinned.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Adds ``definition`` and ``pinned_definition`` (JSON objects, existing rows get ``{}``) to
``tools``, so the firewall can list tools from its catalogue and show an administrator what
changed before a changed tool is accepted. Plain ``ALTER TABLE`` on SQLite, as in 0002.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("definition", "pinned_definition")


def upgrade() -> None:
    with op.batch_alter_table("tools", recreate="never") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.JSON(), nullable=False, server_default="{}"))


def downgrade() -> None:
    with op.batch_alter_table("tools", recreate="never") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
