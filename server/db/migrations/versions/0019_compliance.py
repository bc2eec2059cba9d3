"""The compliance cache.

Revision ID: 0019
Revises: 0016
Create Date: 2026-12-08

Adds ``compliance_results``: one model-scored compliance answer per (account, issue, metric,
mode, engine), with the content hash and catalogue digest it was computed from; removed with
its issue (docs/decisions/0107-compliance-rules-catalogue-and-cache.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "compliance_results",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("engine", sa.String(length=300), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("catalogue", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_compliance_results_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "issue_id"],
            ["issues.account_id", "issues.id"],
            name=op.f("fk_compliance_results_account_id_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "issue_id", "metric", "mode", "engine", name=op.f("pk_compliance_results")
        ),
    )


def downgrade() -> None:
    op.drop_table("compliance_results")
