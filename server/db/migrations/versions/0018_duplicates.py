"""Duplicate pairs of issues: the model's verdict and people's resolutions.

Revision ID: 0018
Revises: 0017 (0016 before s-index was merged; the chain the merge makes)
Create Date: 2026-12-08

Adds ``duplicate_pairs``: one row per pair of synced issues (``issue_a < issue_b``) with the
latest model verdict (its model and both content hashes) and a person's resolution, removed
with either issue (docs/decisions/0105-duplicate-thresholds-verdicts-and-resolutions.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _issue(column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id", column],
        ["issues.account_id", "issues.id"],
        name=op.f(f"fk_duplicate_pairs_account_id_{column}_issues"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "duplicate_pairs",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("issue_a", sa.String(length=64), nullable=False),
        sa.Column("issue_b", sa.String(length=64), nullable=False),
        sa.Column("verdict_model", sa.String(length=200), nullable=True),
        sa.Column("verdict_hash_a", sa.String(length=64), nullable=True),
        sa.Column("verdict_hash_b", sa.String(length=64), nullable=True),
        sa.Column("verdict", sa.String(length=20), nullable=True),
        sa.Column("verdict_reason", sa.Text(), nullable=True),
        sa.Column("verdict_suggestion", sa.Text(), nullable=True),
        sa.Column("verdict_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=20), nullable=True),
        sa.Column("canonical_id", sa.String(length=64), nullable=True),
        sa.Column("resolved_by", sa.String(length=320), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_duplicate_pairs_account_id_accounts"),
            ondelete="CASCADE",
        ),
        _issue("issue_a"),
        _issue("issue_b"),
        sa.PrimaryKeyConstraint(
            "account_id", "issue_a", "issue_b", name=op.f("pk_duplicate_pairs")
        ),
    )
    op.create_index(
        op.f("ix_duplicate_pairs_account_id_issue_b"),
        "duplicate_pairs",
        ["account_id", "issue_b"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_duplicate_pairs_account_id_issue_b"), table_name="duplicate_pairs")
    op.drop_table("duplicate_pairs")
