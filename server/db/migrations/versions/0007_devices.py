"""Devices paired by QR code, and their one-time pairing tokens.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24

Adds ``devices`` (a phone's credential hash, its user, platform and push token) and
``pairing_tokens`` (the hash of a one-time token a QR code carries). Only hashes are stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
NAME = sa.String(length=200)
HASH = sa.String(length=128)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _owners(table: str) -> list[Any]:
    return [
        sa.Column("account_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", ID, nullable=False),
        *_owners("devices"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("secret_hash", HASH, nullable=False),
        sa.Column("push_token", sa.Text(), nullable=True),
        _ts("created_at"),
        _ts("last_used_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.UniqueConstraint("secret_hash", name="uq_devices_secret_hash"),
    )
    op.create_index(
        "ix_devices_account_id_user_id_created_at",
        "devices",
        ["account_id", "user_id", "created_at"],
    )
    op.create_table(
        "pairing_tokens",
        sa.Column("id", ID, nullable=False),
        *_owners("pairing_tokens"),
        sa.Column("token_hash", HASH, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.Column("device_id", ID, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_pairing_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_pairing_tokens_token_hash"),
    )


def downgrade() -> None:
    op.drop_table("pairing_tokens")
    op.drop_index("ix_devices_account_id_user_id_created_at", table_name="devices")
    op.drop_table("devices")
