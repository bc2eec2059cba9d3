"""Secret custody, model providers, flow executions and runtime tokens (the model gateway).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24

Adds ``providers`` (a provider's kind, base URL, models, aliases and the custody reference of
its key), ``secrets`` (``local_encrypted`` AES-GCM ciphertexts and the id of the key that
sealed each), ``flow_executions`` and ``runtime_tokens`` (only the SHA-256 of a token).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
NAME = sa.String(length=200)
HASH = sa.String(length=128)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _account(table: str) -> list[Any]:
    return [
        sa.Column("account_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=f"fk_{table}_account_id_accounts",
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "providers",
        sa.Column("id", ID, nullable=False),
        *_account("providers"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("secret_ref", sa.String(length=500), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("aliases", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_providers"),
        sa.UniqueConstraint("account_id", "name", name="uq_providers_account_id_name"),
    )
    op.create_table(
        "secrets",
        *_account("secrets"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("account_id", "name", name="pk_secrets"),
    )
    op.create_table(
        "flow_executions",
        sa.Column("id", ID, nullable=False),
        *_account("flow_executions"),
        sa.Column("flow", NAME, nullable=False),
        sa.Column("principal", sa.String(length=320), nullable=False),
        _ts("created_at"),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_executions"),
    )
    op.create_index(
        "ix_flow_executions_account_id_created_at",
        "flow_executions",
        ["account_id", "created_at"],
    )
    op.create_table(
        "runtime_tokens",
        sa.Column("id", ID, nullable=False),
        *_account("runtime_tokens"),
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("flow", NAME, nullable=False),
        sa.Column("principal", sa.String(length=320), nullable=False),
        sa.Column("token_hash", HASH, nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        sa.Column("models", sa.JSON(), nullable=False),
        _ts("revoked_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["flow_executions.id"],
            name="fk_runtime_tokens_execution_id_flow_executions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_runtime_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_runtime_tokens_token_hash"),
    )
    op.create_index(
        "ix_runtime_tokens_account_id_execution_id",
        "runtime_tokens",
        ["account_id", "execution_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_runtime_tokens_account_id_execution_id", table_name="runtime_tokens")
    op.drop_table("runtime_tokens")
    op.drop_index("ix_flow_executions_account_id_created_at", table_name="flow_executions")
    op.drop_table("flow_executions")
    op.drop_table("secrets")
    op.drop_table("providers")
