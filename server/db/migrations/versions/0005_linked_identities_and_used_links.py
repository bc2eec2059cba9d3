"""Users' linked channel identities; single-use links once used.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24

Adds ``identities`` (a JSON object, channel -> that channel's id of the person, set by
``preloop users link``; existing users get ``{}``) to ``users``, and the ``used_links`` table
that makes an email approve/deny link single-use: a link's id is inserted once, a second
insert conflicts.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(sa.Column("identities", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "used_links",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_used_links"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_used_links_account_id_accounts",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("used_links")
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.drop_column("identities")
