"""Issue trackers: connected trackers, synced issues and comments, sync cursors, the inbox.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08

Adds ``trackers`` (their synced projects a JSON list on the row; tokens are custody
references, never the token), ``issues`` and ``issue_comments`` (keyed by the tracker's own
ids, so a sync writes each once), ``sync_cursors`` (where each project's sync stands: a crash
resumes from there) and ``webhook_deliveries`` (the durable inbox, one row per verified
delivery, a replay refused by its unique key). Everything synced from a tracker goes with it
(``ON DELETE CASCADE`` on a tenant-safe (account_id, tracker_id) key), and with its account
(docs/decisions/0087-sql-tracker-storage.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trackers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=False),
        sa.Column("token_ref", sa.String(length=500), nullable=False),
        sa.Column("projects", sa.JSON(), nullable=False),
        sa.Column("webhook_secret_ref", sa.String(length=500), nullable=True),
        sa.Column("username", sa.String(length=320), nullable=True),
        sa.Column("poll_seconds", sa.Integer(), nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_trackers_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trackers")),
        sa.UniqueConstraint("account_id", "id", name=op.f("uq_trackers_account_id_id")),
        sa.UniqueConstraint("account_id", "name", name=op.f("uq_trackers_account_id_name")),
    )
    op.create_index(op.f("ix_trackers_next_poll_at"), "trackers", ["next_poll_at"], unique=False)
    op.create_table(
        "issues",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("tracker_id", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=500), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.Column("key", sa.String(length=700), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=200), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("assignees", sa.JSON(), nullable=False),
        sa.Column("priority", sa.String(length=200), nullable=True),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "tracker_id"],
            ["trackers.account_id", "trackers.id"],
            name=op.f("fk_issues_account_id_tracker_id_trackers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_issues_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
        sa.UniqueConstraint("account_id", "id", name=op.f("uq_issues_account_id_id")),
        sa.UniqueConstraint(
            "account_id",
            "tracker_id",
            "external_id",
            name=op.f("uq_issues_account_id_tracker_id_external_id"),
        ),
    )
    op.create_index(op.f("ix_issues_account_id_key"), "issues", ["account_id", "key"], unique=False)
    op.create_index(
        op.f("ix_issues_account_id_tracker_id_project_number"),
        "issues",
        ["account_id", "tracker_id", "project", "number"],
        unique=False,
    )
    op.create_index(
        op.f("ix_issues_account_id_updated_at"),
        "issues",
        ["account_id", "updated_at"],
        unique=False,
    )
    op.create_index(op.f("ix_issues_account_id_url"), "issues", ["account_id", "url"], unique=False)
    op.create_table(
        "sync_cursors",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("tracker_id", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=500), nullable=False),
        sa.Column("updated_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("page", sa.Text(), nullable=True),
        sa.Column("page_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_scan_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_scan_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("issues_synced", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "tracker_id"],
            ["trackers.account_id", "trackers.id"],
            name=op.f("fk_sync_cursors_account_id_tracker_id_trackers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sync_cursors_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "tracker_id", "project", name=op.f("pk_sync_cursors")
        ),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("tracker_id", sa.String(length=64), nullable=False),
        sa.Column("delivery_id", sa.String(length=200), nullable=False),
        sa.Column("event", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id", "tracker_id"],
            ["trackers.account_id", "trackers.id"],
            name=op.f("fk_webhook_deliveries_account_id_tracker_id_trackers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_webhook_deliveries_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "account_id",
            "tracker_id",
            "delivery_id",
            name=op.f("uq_webhook_deliveries_account_id_tracker_id_delivery_id"),
        ),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_account_id_received_at"),
        "webhook_deliveries",
        ["account_id", "received_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_webhook_deliveries_state_received_at"),
        "webhook_deliveries",
        ["state", "received_at"],
        unique=False,
    )
    op.create_table(
        "issue_comments",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("tracker_id", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "issue_id"],
            ["issues.account_id", "issues.id"],
            name=op.f("fk_issue_comments_account_id_issue_id_issues"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_issue_comments_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_comments")),
        sa.UniqueConstraint(
            "account_id",
            "issue_id",
            "external_id",
            name=op.f("uq_issue_comments_account_id_issue_id_external_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("issue_comments")
    op.drop_index(op.f("ix_webhook_deliveries_state_received_at"), table_name="webhook_deliveries")
    op.drop_index(
        op.f("ix_webhook_deliveries_account_id_received_at"), table_name="webhook_deliveries"
    )
    op.drop_table("webhook_deliveries")
    op.drop_table("sync_cursors")
    op.drop_index(op.f("ix_issues_account_id_url"), table_name="issues")
    op.drop_index(op.f("ix_issues_account_id_updated_at"), table_name="issues")
    op.drop_index(op.f("ix_issues_account_id_tracker_id_project_number"), table_name="issues")
    op.drop_index(op.f("ix_issues_account_id_key"), table_name="issues")
    op.drop_table("issues")
    op.drop_index(op.f("ix_trackers_next_poll_at"), table_name="trackers")
    op.drop_table("trackers")
