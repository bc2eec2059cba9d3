"""Initial schema: accounts and identity, catalog, policies, approvals, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written from ``alembic revision --autogenerate`` output and checked by hand. It is frozen:
later changes go in new revisions. Helpers are local so the file never depends on the current
``server.db.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
NAME = sa.String(length=200)
HASH = sa.String(length=128)


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _account_id(table: str) -> tuple[sa.Column[Any], sa.ForeignKeyConstraint]:
    return (
        sa.Column("account_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts",
            ondelete="CASCADE",
        ),
    )


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_accounts"),
        sa.UniqueConstraint("name", name="uq_accounts_name"),
    )
    op.create_table(
        "users",
        sa.Column("id", ID, nullable=False),
        *_account_id("users"),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", NAME, nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("account_id", "email", name="uq_users_account_id_email"),
    )
    op.create_table(
        "teams",
        sa.Column("id", ID, nullable=False),
        *_account_id("teams"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("account_id", "name", name="uq_teams_account_id_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", ID, nullable=False),
        *_account_id("api_keys"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("key_hash", HASH, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("revoked_at", nullable=True),
        _ts("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_account_id_created_at", "api_keys", ["account_id", "created_at"])
    op.create_table(
        "mcp_servers",
        sa.Column("id", ID, nullable=False),
        *_account_id("mcp_servers"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("transport", sa.String(length=40), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_mcp_servers"),
        sa.UniqueConstraint("account_id", "name", name="uq_mcp_servers_account_id_name"),
    )
    op.create_table(
        "tools",
        sa.Column("id", ID, nullable=False),
        *_account_id("tools"),
        sa.Column("server_name", NAME, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("input_schema", sa.JSON(), nullable=False),
        sa.Column("definition_hash", HASH, nullable=False),
        sa.Column("pinned_hash", HASH, nullable=False),
        _ts("first_seen_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_tools"),
        sa.UniqueConstraint(
            "account_id", "server_name", "name", name="uq_tools_account_id_server_name_name"
        ),
    )
    op.create_table(
        "policy_versions",
        *_account_id("policy_versions"),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", HASH, nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("name", NAME, nullable=False),
        _ts("created_at"),
        sa.Column("created_by", NAME, nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "version", name="pk_policy_versions"),
    )
    op.create_table(
        "workflows",
        *_account_id("workflows"),
        sa.Column("name", NAME, nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("account_id", "name", name="pk_workflows"),
    )
    op.create_table(
        "approval_requests",
        sa.Column("id", ID, nullable=False),
        *_account_id("approval_requests"),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("principal_key_id", ID, nullable=False),
        sa.Column("server", NAME, nullable=False),
        sa.Column("tool", NAME, nullable=False),
        sa.Column("args_digest", HASH, nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=True),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("workflow", NAME, nullable=False),
        sa.Column("rule", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("decided_at", nullable=True),
        sa.Column("decided_by", NAME, nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approval_requests"),
        sa.UniqueConstraint("account_id", "id", name="uq_approval_requests_account_id_id"),
    )
    op.create_index(
        "ix_approval_requests_account_id_created_at",
        "approval_requests",
        ["account_id", "created_at"],
    )
    op.create_index(
        "ix_approval_requests_account_id_status_created_at",
        "approval_requests",
        ["account_id", "status", "created_at"],
    )
    op.create_index(
        "ix_approval_requests_status_expires_at", "approval_requests", ["status", "expires_at"]
    )
    op.create_table(
        "approval_votes",
        sa.Column("request_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("approver", NAME, nullable=False),
        sa.Column("choice", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=40), nullable=False),
        _ts("created_at"),
        sa.ForeignKeyConstraint(
            ["account_id", "request_id"],
            ["approval_requests.account_id", "approval_requests.id"],
            name="fk_approval_votes_account_id_request_id_approval_requests",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("request_id", "approver", name="pk_approval_votes"),
    )
    op.create_index(
        "ix_approval_votes_account_id_request_id", "approval_votes", ["account_id", "request_id"]
    )
    op.create_table(
        "audit_events",
        *_account_id("audit_events"),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("actor", NAME, nullable=False),
        _ts("at"),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_account_id_kind", "audit_events", ["account_id", "kind"])
    op.create_index("ix_audit_events_account_id_actor", "audit_events", ["account_id", "actor"])
    op.create_index("ix_audit_events_account_id_at", "audit_events", ["account_id", "at"])
    op.create_table(
        "audit_heads",
        *_account_id("audit_heads"),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name="pk_audit_heads"),
    )


def downgrade() -> None:
    for table in (
        "audit_heads",
        "audit_events",
        "approval_votes",
        "approval_requests",
        "workflows",
        "policy_versions",
        "tools",
        "mcp_servers",
        "api_keys",
        "teams",
        "users",
        "accounts",
    ):
        op.drop_table(table)  # their indexes go with them
