"""Notification claims: each notification is carried out by one process.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24

Adds ``notification_claims``: one row per (account, request, channel, operation), inserted by
the process that carries the operation out. Every replica (and a bot worker) receives every
approval event; the primary key lets exactly one of them post, escalate or settle.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification_claims",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("operation", sa.String(length=20), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "request_id", "channel", "operation", name="pk_notification_claims"
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_notification_claims_account_id_accounts",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("notification_claims")
