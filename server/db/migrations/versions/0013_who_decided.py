"""Who decided: the person's name and the credential, beside the person, on every channel.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

Adds ``decided_by_name`` and ``decided_via`` (nullable) to ``approval_requests`` and
``approver_name`` and ``via`` (existing rows get ``''``) to ``approval_votes``
(docs/decisions/0054-who-decided.md). Rows decided before keep ``decided_by`` as it was
(a key id for REST and dashboard votes, a user id for the channels); readers fall back to it
when no name was recorded. Plain ``ALTER TABLE`` on SQLite, as in 0002.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A name is a user's name, else their email (up to 320 characters); a credential a channel's
# prefix and its id (``mattermost:`` and up to 200): wider than the 200 of ids and names.
NAME = sa.String(length=320)


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", recreate="never") as batch:
        batch.add_column(sa.Column("decided_by_name", NAME, nullable=True))
        batch.add_column(sa.Column("decided_via", NAME, nullable=True))
    with op.batch_alter_table("approval_votes", recreate="never") as batch:
        batch.add_column(sa.Column("approver_name", NAME, nullable=False, server_default=""))
        batch.add_column(sa.Column("via", NAME, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("approval_votes", recreate="never") as batch:
        batch.drop_column("via")
        batch.drop_column("approver_name")
    with op.batch_alter_table("approval_requests", recreate="never") as batch:
        batch.drop_column("decided_via")
        batch.drop_column("decided_by_name")
