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

Full text (docs/decisions/0100-full-text-narrowing.md): on SQLite an FTS5 table
``issues_fts`` (contentless, unicode61 without diacritics removal) of each issue's title and
body, its rows numbered by ``issue_search_rows`` (an INTEGER PRIMARY KEY, stable across VACUUM,
unlike the rowid of ``issues``) and kept in step by triggers; on PostgreSQL a GIN index on a
``tsvector`` of the title and body reduced to ASCII words. Texts the index cannot vouch for
(not ASCII, too long) carry the marker word ``zzpreloopuncertainzz``, which every search asks
for too.
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


UNCERTAIN = "zzpreloopuncertainzz"
_NOT_PLAIN = (  # text that FTS5 may split or fold otherwise than Python: mark it
    "CASE WHEN length(CAST({p}.title || {p}.body AS BLOB)) <> length({p}.title || {p}.body)"
    f" THEN ' {UNCERTAIN}' ELSE '' END"
)
_FTS_ROW = "(SELECT rowid FROM issue_search_rows WHERE issue_id = {p}.id)"
_FTS_INSERT = (
    "INSERT INTO issue_search_rows (issue_id) VALUES (new.id);"
    " INSERT INTO issues_fts (rowid, title, body) VALUES"
    f" ({_FTS_ROW.format(p='new')}, new.title, new.body || {_NOT_PLAIN.format(p='new')});"
)
_FTS_DELETE = (
    "INSERT INTO issues_fts (issues_fts, rowid, title, body) VALUES ('delete',"
    f" {_FTS_ROW.format(p='old')}, old.title, old.body || {_NOT_PLAIN.format(p='old')});"
)
_SQLITE_FTS = [
    "CREATE TABLE issue_search_rows (rowid INTEGER PRIMARY KEY, issue_id VARCHAR(64) NOT NULL"
    " UNIQUE)",
    "CREATE VIRTUAL TABLE issues_fts USING fts5(title, body, content='',"
    " tokenize='unicode61 remove_diacritics 0')",
    f"CREATE TRIGGER issues_fts_insert AFTER INSERT ON issues BEGIN {_FTS_INSERT} END",
    f"CREATE TRIGGER issues_fts_delete AFTER DELETE ON issues BEGIN {_FTS_DELETE}"
    " DELETE FROM issue_search_rows WHERE issue_id = old.id; END",
    "CREATE TRIGGER issues_fts_update AFTER UPDATE OF title, body ON issues BEGIN"
    f" {_FTS_DELETE} INSERT INTO issues_fts (rowid, title, body) VALUES"
    f" ({_FTS_ROW.format(p='new')}, new.title, new.body || {_NOT_PLAIN.format(p='new')}); END",
    "INSERT INTO issue_search_rows (issue_id) SELECT id FROM issues",
    "INSERT INTO issues_fts (rowid, title, body) SELECT r.rowid, i.title, i.body ||"
    f" {_NOT_PLAIN.format(p='i')} FROM issues i JOIN issue_search_rows r ON r.issue_id = i.id",
]
# the expression server/db/stores/_issue_filters.py PG_TSVECTOR searches, character for
# character (tests/contract/test_trackers.py checks the plan uses the index)
_PG_TEXT = "issues.title || ' ' || issues.body"
_PG_BOTH = "issues.title || issues.body"
PG_TSVECTOR = (
    f"to_tsvector('simple'::regconfig, left(regexp_replace(lower({_PG_TEXT}), '[^a-z0-9]+',"
    f" ' ', 'g'), 100000) || CASE WHEN octet_length({_PG_BOTH}) <>"
    f" char_length({_PG_BOTH}) OR char_length({_PG_BOTH}) >= 99999"
    f" THEN ' {UNCERTAIN}' ELSE '' END)"
)


def _full_text(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_issues_search_tsv ON issues USING gin (({PG_TSVECTOR}))")
    else:
        for statement in _SQLITE_FTS:
            op.execute(statement)


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
    _full_text(conn)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_issues_search_tsv")
    else:
        for trigger in ("issues_fts_insert", "issues_fts_delete", "issues_fts_update"):
            op.execute(f"DROP TRIGGER {trigger}")
        op.execute("DROP TABLE issues_fts")
        op.execute("DROP TABLE issue_search_rows")
    op.drop_index("ix_issue_vectors_model_account_id_issue_id", table_name="issue_vectors")
    op.drop_table("issue_vectors")
