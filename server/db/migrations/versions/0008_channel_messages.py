"""Messages channels posted about approval requests (Slack: channel id + ts).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24

Adds ``channel_messages``: where a channel posted each request's message, so the message can
be updated once the request is decided, by any replica and after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "channel_messages",
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("conversation", sa.String(length=200), nullable=False),
        sa.Column("ts", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "conversation", "ts", name="pk_channel_messages"),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_channel_messages_account_id_accounts",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_channel_messages_account_id_request_id_channel",
        "channel_messages",
        ["account_id", "request_id", "channel"],
    )


def downgrade() -> None:
    op.drop_index("ix_channel_messages_account_id_request_id_channel", "channel_messages")
    op.drop_table("channel_messages")
