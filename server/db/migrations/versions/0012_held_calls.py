"""Held calls: the sealed arguments of async calls; sync waits and the processes' leases.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

Adds ``held_calls``: one row per approval request whose call waits for ``get_approval_status``,
holding the call's arguments sealed with the ``local_encrypted`` keys (the request keeps only
the redacted ones). Any replica, also after a restart, can then run the approved call; the
request's claim makes it run once (docs/decisions/0048).

Adds ``sync_waits`` (a call waiting for a synchronous approval, by the server process holding
it) and ``instance_leases`` (each process renews its lease while it runs): the requests of a
process whose lease ran out are cancelled by any replica (docs/decisions/0049).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_calls",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "request_id", name="pk_held_calls"),
        sa.ForeignKeyConstraint(
            ["account_id", "request_id"],
            ["approval_requests.account_id", "approval_requests.id"],
            name="fk_held_calls_account_id_approval_requests",
            ondelete="CASCADE",
        ),
    )


    op.create_table(
        "sync_waits",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "request_id", name="pk_sync_waits"),
        sa.ForeignKeyConstraint(
            ["account_id", "request_id"],
            ["approval_requests.account_id", "approval_requests.id"],
            name="fk_sync_waits_account_id_approval_requests",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_sync_waits_instance_id", "sync_waits", ["instance_id"])
    op.create_table(
        "instance_leases",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name="pk_instance_leases"),
    )


def downgrade() -> None:
    op.drop_table("instance_leases")
    op.drop_index("ix_sync_waits_instance_id", table_name="sync_waits")
    op.drop_table("sync_waits")
    op.drop_table("held_calls")
