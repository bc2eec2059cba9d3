"""The search index of synced issues: vectors, and pgvector where the server has it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08

Adds ``issue_vectors`` (one vector per account, issue and embedder identity, as float32 bytes
in ``data``; removed with its issue). On PostgreSQL it also creates the ``vector`` extension
when the server offers it (``pg_available_extensions``) and the role may create it, and then
adds the untyped ``embedding vector`` column the store searches with HNSW; without it the
store searches exactly, as on SQLite, and says why once in the log
(docs/decisions/0099-sql-issue-vectors.md). The extension is left in place on downgrade (other
objects may use it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("preloop.db")


def _vector_extension(conn: sa.Connection) -> bool:
    """Whether the ``vector`` extension is (now) installed in this database: created here
    when the server has it and the role may create it."""
    installed = "SELECT count(*) FROM pg_extension WHERE extname = 'vector'"
    if conn.exec_driver_sql(installed).scalar():
        return True
    available = "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"
    if not conn.exec_driver_sql(available).scalar():
        log.warning(
            "PostgreSQL has no pgvector ('vector' extension): issue similarity search will be "
            "exact (every vector scored in Python); install pgvector for HNSW indexes"
        )
        return False
    try:
        with conn.begin_nested():  # a refusal rolls back to here, not the whole migration
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except DBAPIError as exc:
        log.warning(
            "cannot CREATE EXTENSION vector (%s): issue similarity search will be exact; "
            "have a superuser run CREATE EXTENSION vector, then see docs/search.md",
            str(exc.orig).strip().splitlines()[0] if exc.orig else exc,
        )
        return False
    return True


def upgrade() -> None:
    op.create_table(
        "issue_vectors",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("embedded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name="fk_issue_vectors_account_id_accounts",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "issue_id"],
            ["issues.account_id", "issues.id"],
            name="fk_issue_vectors_account_id_issue_id_issues",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "issue_id", "model", name="pk_issue_vectors"),
    )
    op.create_index(
        "ix_issue_vectors_model_account_id_issue_id",
        "issue_vectors",
        ["model", "account_id", "issue_id"],
    )
    conn = op.get_bind()
    if conn.dialect.name == "postgresql" and _vector_extension(conn):
        op.execute("ALTER TABLE issue_vectors ADD COLUMN embedding vector")


def downgrade() -> None:
    op.drop_index("ix_issue_vectors_model_account_id_issue_id", table_name="issue_vectors")
    op.drop_table("issue_vectors")
