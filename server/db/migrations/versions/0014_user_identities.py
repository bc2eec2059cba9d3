"""Linked channel identities, indexed: a channel's click finds its user by one lookup.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08

Adds ``user_identities`` (one row per user and channel: the id the channel knows the person
by), indexed by (account, channel, id), and fills it from ``users.identities``
(docs/decisions/0076-channel-identity-decisions.md). ``users.identities`` stays: the user
record is read from it; the stores write both in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_user_identities_account_id_channel_external_id"


def upgrade() -> None:
    table = op.create_table(
        "user_identities",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "channel", name="pk_user_identities"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_user_identities_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_user_identities_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index(INDEX, "user_identities", ["account_id", "channel", "external_id"])
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("account_id", sa.String),
        sa.column("identities", sa.JSON),
    )
    rows = []
    for user_id, account_id, identities in op.get_bind().execute(
        sa.select(users.c.id, users.c.account_id, users.c.identities)
    ):
        for channel, external_id in _mapping(identities).items():
            if external_id:
                rows.append(
                    {
                        "user_id": user_id,
                        "channel": channel,
                        "account_id": account_id,
                        "external_id": str(external_id),
                    }
                )
    if rows:
        assert table is not None
        op.bulk_insert(table, rows)


def _mapping(identities: Any) -> dict[str, Any]:
    """The JSON column as a dict (a string on drivers that do not decode JSON)."""
    if isinstance(identities, str):
        identities = json.loads(identities or "{}")
    return dict(identities or {})


def downgrade() -> None:
    op.drop_index(INDEX, "user_identities")
    op.drop_table("user_identities")
