"""The model gateway's usage ledger, budgets and price overrides.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24

Adds ``usage_records`` (one row per gateway request, cost in integer nano-dollars),
``budgets``, ``budget_counters`` (one row per budget and period, locked while a reservation
is taken), ``budget_reservations`` (an admitted request's estimate until it is settled or
expires) and ``model_prices`` (per-account overrides of the built-in price table).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=64)
NAME = sa.String(length=200)


def _account_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["account_id"], ["accounts.id"], name=f"fk_{table}_account_id_accounts", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("api_key_id", ID, nullable=False),
        sa.Column("principal", NAME, nullable=False),
        sa.Column("flow", NAME, nullable=True),
        sa.Column("execution_id", ID, nullable=True),
        sa.Column("endpoint", sa.String(length=40), nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("upstream_model", NAME, nullable=False),
        sa.Column("provider", NAME, nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_usage_records"),
        _account_fk("usage_records"),
    )
    op.create_index(
        "ix_usage_records_account_id_created_at", "usage_records", ["account_id", "created_at"]
    )
    op.create_index(
        "ix_usage_records_account_id_execution_id",
        "usage_records",
        ["account_id", "execution_id"],
    )
    op.create_index(
        "ix_usage_records_account_id_flow_created_at",
        "usage_records",
        ["account_id", "flow", "created_at"],
    )
    op.create_table(
        "budgets",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("scope", sa.String(length=20), nullable=False),
        sa.Column("scope_id", NAME, nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("soft_limit_nanos", sa.BigInteger(), nullable=True),
        sa.Column("hard_limit_nanos", sa.BigInteger(), nullable=True),
        sa.Column("on_soft", sa.String(length=20), nullable=False),
        sa.Column("approval_workflow", NAME, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_budgets"),
        _account_fk("budgets"),
        sa.UniqueConstraint("account_id", "name", name="uq_budgets_account_id_name"),
    )
    op.create_table(
        "budget_counters",
        sa.Column("budget_id", ID, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("spent_nanos", sa.BigInteger(), nullable=False),
        sa.Column("soft_notified", sa.Boolean(), nullable=False),
        sa.Column("approval_id", ID, nullable=True),
        sa.Column("approval_status", sa.String(length=20), nullable=True),
        sa.PrimaryKeyConstraint("budget_id", "period_start", name="pk_budget_counters"),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name="fk_budget_counters_budget_id_budgets",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "budget_reservations",
        sa.Column("id", ID, nullable=False),
        sa.Column("budget_id", ID, nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", "budget_id", name="pk_budget_reservations"),
        sa.ForeignKeyConstraint(
            ["budget_id", "period_start"],
            ["budget_counters.budget_id", "budget_counters.period_start"],
            name="fk_budget_reservations_budget_id_period_start_budget_counters",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_budget_reservations_budget_id_period_start",
        "budget_reservations",
        ["budget_id", "period_start"],
    )
    op.create_table(
        "model_prices",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("model", NAME, nullable=False),
        sa.Column("input_nanos", sa.BigInteger(), nullable=False),
        sa.Column("output_nanos", sa.BigInteger(), nullable=False),
        sa.Column("cached_nanos", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "model", name="pk_model_prices"),
        _account_fk("model_prices"),
    )


def downgrade() -> None:
    op.drop_table("model_prices")
    op.drop_table("budget_reservations")
    op.drop_table("budget_counters")
    op.drop_table("budgets")
    op.drop_table("usage_records")
