"""Gateway content capture: capture rules, captured interactions, and runtime session ids.

Revision ID: 0020
Revises: 0016
Create Date: 2026-12-08

Adds ``usage_records.session_id`` (the client's ``X-Preloop-Session-Id``, so runtime sessions
list from the ledger whether capture is on or not), ``gateway_capture_rules`` (off | metadata |
redacted_preview | full per account, flow or API key) and ``gateway_interactions`` (captured,
redacted requests until their ``expires_at``), with its full-text index: an FTS5 table kept by
triggers on SQLite, a GIN index on ``to_tsvector('simple', search_text)`` on PostgreSQL
(docs/decisions/0109-gateway-capture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE gateway_interactions_fts USING fts5("
    "search_text, content='gateway_interactions', content_rowid='rowid', "
    "tokenize='unicode61')",
    "CREATE TRIGGER gateway_interactions_fts_insert AFTER INSERT ON gateway_interactions BEGIN "
    "INSERT INTO gateway_interactions_fts(rowid, search_text) "
    "VALUES (new.rowid, new.search_text); END",
    "CREATE TRIGGER gateway_interactions_fts_delete AFTER DELETE ON gateway_interactions BEGIN "
    "INSERT INTO gateway_interactions_fts(gateway_interactions_fts, rowid, search_text) "
    "VALUES ('delete', old.rowid, old.search_text); END",
)
_PG_FTS = (
    "CREATE INDEX ix_gateway_interactions_fts ON gateway_interactions "
    "USING gin (to_tsvector('simple', search_text))"
)


def _account(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"],
        ["accounts.id"],
        name=f"fk_{table}_account_id_accounts",
        ondelete="CASCADE",
    )


def _at(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("session_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_usage_records_account_id_session_id", "usage_records", ["account_id", "session_id"]
    )
    op.create_table(
        "gateway_capture_rules",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("max_bytes", sa.Integer(), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint(
            "account_id", "scope", "subject", name="pk_gateway_capture_rules"
        ),
        _account("gateway_capture_rules"),
    )
    op.create_table(
        "gateway_interactions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("api_key_id", sa.String(length=64), nullable=False),
        sa.Column("flow", sa.String(length=200), nullable=True),
        sa.Column("execution_id", sa.String(length=64), nullable=True),
        sa.Column("session_id", sa.String(length=64), nullable=True),
        sa.Column("endpoint", sa.String(length=40), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("request", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("vector_model", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_interactions"),
        _account("gateway_interactions"),
    )
    for columns in (
        ["account_id", "created_at"],
        ["account_id", "execution_id"],
        ["account_id", "session_id"],
        ["expires_at"],
    ):
        op.create_index(
            f"ix_gateway_interactions_{'_'.join(columns)}", "gateway_interactions", columns
        )
    statements = _SQLITE_FTS if op.get_context().dialect.name == "sqlite" else (_PG_FTS,)
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS gateway_interactions_fts_insert")
        op.execute("DROP TRIGGER IF EXISTS gateway_interactions_fts_delete")
        op.execute("DROP TABLE IF EXISTS gateway_interactions_fts")
    op.drop_table("gateway_interactions")
    op.drop_table("gateway_capture_rules")
    op.drop_index("ix_usage_records_account_id_session_id", table_name="usage_records")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("session_id")
