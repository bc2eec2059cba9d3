"""The database schema (SQLAlchemy Core). Alembic migrations must produce exactly this
(``tests/contract/test_sql_schema.py`` compares them).

Column names equal the fields of the records in ``hub.records``, so a row converts to its
record with ``msgspec.convert``. Every tenant table carries ``account_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import base as postgresql_base
from sqlalchemy.types import TypeDecorator, UserDefinedType

from hub.store_rules import aware_utc

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(64)
NAME = String(200)
HASH = String(128)
# Who decided, by name and credential (migration 0013): a user's email when they have no name
# (320), a channel's prefix and id (``mattermost:`` and up to 200).
DECIDER = String(320)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp: stored in UTC, read back aware in UTC.

    SQLite keeps no zone (SQLAlchemy writes the wall time and drops ``tzinfo``), so values are
    converted to UTC before they are bound and get UTC attached when read. Naive datetimes are
    refused: their zone is unknowable.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else aware_utc(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _account_id() -> Column[str]:
    return Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


def _at(name: str, *, nullable: bool = False) -> Column[datetime]:
    return Column(name, UtcDateTime(), nullable=nullable)


accounts = Table(
    "accounts",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", NAME, nullable=False, unique=True),
    _at("created_at"),
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("email", String(320), nullable=False),
    Column("name", NAME, nullable=False),
    _at("created_at"),
    Column("identities", JSON, nullable=False, server_default="{}"),  # channel -> id
    UniqueConstraint("account_id", "email"),
)

# users.identities again, one row per (user, channel), indexed by the channel's id of the
# person: a click finds its user without reading every user (migration 0014). Written with
# users.identities in one transaction; users.identities stays what a user record is read from.
user_identities = Table(
    "user_identities",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(20), primary_key=True),
    _account_id(),
    Column("external_id", String(320), nullable=False),
    Index(None, "account_id", "channel", "external_id"),
)

teams = Table(
    "teams",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("members", JSON, nullable=False),
    _at("created_at"),
    UniqueConstraint("account_id", "name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("role", String(20), nullable=False),
    Column("key_hash", HASH, nullable=False, unique=True),  # the key itself is never stored
    Column("user_id", ID, nullable=True),
    Column("labels", JSON, nullable=False),
    _at("created_at"),
    _at("expires_at", nullable=True),
    _at("revoked_at", nullable=True),
    _at("last_used_at", nullable=True),
    Column("tools", JSON, nullable=False, server_default="[]"),  # the tool allow-list
    Index(None, "account_id", "created_at"),
)

# A user's password: only its scrypt hash (hub/passwords.py) and the role a login gets
# (migration 0016).
user_passwords = Table(
    "user_passwords",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    _account_id(),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(20), nullable=False),
    _at("updated_at"),
)

# The bearer tokens logins issued: only the SHA-256 of each (hub/access_tokens.py). A user's
# removal removes them.
access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", HASH, nullable=False, unique=True),  # the token is never stored
    _at("created_at"),
    _at("expires_at"),
    _at("revoked_at", nullable=True),
    Index(None, "account_id", "user_id"),
    Index(None, "expires_at"),
)

mcp_servers = Table(
    "mcp_servers",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("transport", String(40), nullable=False),
    Column("config", JSON, nullable=False),
    Column("source", String(20), nullable=False),
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("account_id", "name"),
)

tools = Table(
    "tools",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("server_name", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("description", Text, nullable=False),
    Column("input_schema", JSON, nullable=False),
    Column("definition_hash", HASH, nullable=False),
    Column("pinned_hash", HASH, nullable=False),
    Column("definition", JSON, nullable=False, server_default="{}"),
    Column("pinned_definition", JSON, nullable=False, server_default="{}"),
    _at("first_seen_at"),
    _at("updated_at"),
    UniqueConstraint("account_id", "server_name", "name"),
)

policy_versions = Table(
    "policy_versions",
    metadata,
    _account_id(),
    Column("version", Integer, nullable=False),
    Column("digest", HASH, nullable=False),
    Column("source", Text, nullable=False),
    Column("name", NAME, nullable=False),
    _at("created_at"),
    Column("created_by", NAME, nullable=False),
    Column("comment", Text, nullable=False),
    PrimaryKeyConstraint("account_id", "version"),  # unique version per account
)

workflows = Table(
    "workflows",
    metadata,
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("spec", JSON, nullable=False),
    Column("policy_version", Integer, nullable=False),
    _at("updated_at"),
    PrimaryKeyConstraint("account_id", "name"),
)

approval_requests = Table(
    "approval_requests",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("status", String(20), nullable=False),
    Column("principal_key_id", ID, nullable=False),
    Column("server", NAME, nullable=False),
    Column("tool", NAME, nullable=False),
    Column("args_digest", HASH, nullable=False),
    Column("args", JSON, nullable=False),
    Column("justification", Text, nullable=True),
    Column("policy_version", Integer, nullable=False),
    Column("workflow", NAME, nullable=False),
    Column("rule", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("required_approvals", Integer, nullable=False),
    _at("created_at"),
    _at("expires_at", nullable=True),
    _at("decided_at", nullable=True),
    Column("decided_by", NAME, nullable=True),
    Column("decided_by_name", DECIDER, nullable=True),  # migration 0013
    Column("decided_via", DECIDER, nullable=True),
    Column("comment", Text, nullable=True),
    # A plain-string default renders ``DEFAULT '[]'``, valid for SQLite's TEXT and PG's json.
    Column("approvers", JSON, nullable=False, server_default="[]"),
    _at("claimed_at", nullable=True),
    Column("result", JSON(none_as_null=True), nullable=True),  # None is SQL NULL, not 'null'
    Column("on_timeout", String(20), nullable=False, server_default="deny"),
    _at("escalate_at", nullable=True),
    Column("escalation_approvers", JSON, nullable=False, server_default="[]"),
    _at("escalated_at", nullable=True),
    UniqueConstraint("account_id", "id"),  # the target of the votes' tenant-safe foreign key
    Index(None, "account_id", "created_at"),
    Index(None, "account_id", "status", "created_at"),
    Index(None, "status", "expires_at"),  # the expiry scheduler scans across accounts
    Index(None, "status", "escalate_at"),  # and so does the escalation
)

approval_votes = Table(
    "approval_votes",
    metadata,
    Column("request_id", ID, nullable=False),
    Column("account_id", ID, nullable=False),
    Column("approver", NAME, nullable=False),
    Column("choice", String(20), nullable=False),
    Column("comment", Text, nullable=False),
    Column("channel", String(40), nullable=False),
    _at("created_at"),
    Column("approver_name", DECIDER, nullable=False, server_default=""),  # migration 0013
    Column("via", DECIDER, nullable=False, server_default=""),
    PrimaryKeyConstraint("request_id", "approver"),  # one vote per approver
    ForeignKeyConstraint(
        ["account_id", "request_id"],
        ["approval_requests.account_id", "approval_requests.id"],
        ondelete="CASCADE",
    ),
    Index(None, "account_id", "request_id"),
)

held_calls = Table(  # the sealed real arguments of calls held for async approval
    "held_calls",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("request_id", ID, primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("sealed", Text, nullable=False),
    _at("created_at"),
    ForeignKeyConstraint(
        ["account_id", "request_id"],
        ["approval_requests.account_id", "approval_requests.id"],
        ondelete="CASCADE",
    ),
)

sync_waits = Table(  # calls waiting for a sync approval, by the process that holds each
    "sync_waits",
    metadata,
    Column("account_id", ID, primary_key=True),
    Column("request_id", ID, primary_key=True),
    Column("instance_id", ID, nullable=False),
    _at("created_at"),
    ForeignKeyConstraint(
        ["account_id", "request_id"],
        ["approval_requests.account_id", "approval_requests.id"],
        ondelete="CASCADE",
    ),
    Index(None, "instance_id"),
)

instance_leases = Table(  # each server process renews its lease while it runs
    "instance_leases",
    metadata,
    Column("instance_id", ID, primary_key=True),
    _at("renewed_at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    _account_id(),
    Column("seq", BigInteger, nullable=False),
    Column("kind", String(100), nullable=False),
    Column("actor", NAME, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("data", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    PrimaryKeyConstraint("account_id", "seq"),  # concurrent appends can't share a seq
    Index(None, "account_id", "kind"),
    Index(None, "account_id", "actor"),
    Index(None, "account_id", "at"),
)

audit_heads = Table(
    "audit_heads",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

used_links = Table(  # single-use links (email approve/deny) once they were used
    "used_links",
    metadata,
    Column("id", String(64), primary_key=True),
    _account_id(),
    _at("used_at"),
)

channel_messages = Table(  # messages a channel posted per request (Slack: channel id + ts)
    "channel_messages",
    metadata,
    Column("channel", String(20), primary_key=True),
    Column("conversation", String(200), primary_key=True),
    Column("ts", String(64), primary_key=True),
    _account_id(),
    Column("request_id", ID, nullable=False),
    _at("created_at"),
    Index(None, "account_id", "request_id", "channel"),
)

notification_claims = Table(  # which process carries out each notification (one per key)
    "notification_claims",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("request_id", ID, primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("operation", String(20), primary_key=True),
    _at("claimed_at"),
    Column("claimed_by", String(200), nullable=False),
)

devices = Table(
    "devices",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", NAME, nullable=False),
    Column("platform", String(20), nullable=False),
    Column("secret_hash", HASH, nullable=False, unique=True),  # the credential is never stored
    Column("push_token", Text, nullable=True),
    _at("created_at"),
    _at("last_used_at", nullable=True),
    _at("revoked_at", nullable=True),
    Index(None, "account_id", "user_id", "created_at"),
)

pairing_tokens = Table(
    "pairing_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", HASH, nullable=False, unique=True),  # the token is never stored
    _at("created_at"),
    _at("expires_at"),
    _at("used_at", nullable=True),
    Column("device_id", ID, nullable=True),
)

# --- the model gateway: usage ledger, budgets, prices (money as integer nano-dollars) ------
usage_records = Table(
    "usage_records",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("api_key_id", ID, nullable=False),
    Column("principal", NAME, nullable=False),
    Column("flow", NAME, nullable=True),
    Column("execution_id", ID, nullable=True),
    Column("endpoint", String(40), nullable=False),
    Column("model", NAME, nullable=False),
    Column("upstream_model", NAME, nullable=False),
    Column("provider", NAME, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("stream", Boolean, nullable=False),
    _at("created_at"),
    Column("error", Text, nullable=True),
    Index(None, "account_id", "created_at"),
    Index(None, "account_id", "execution_id"),
    Index(None, "account_id", "flow", "created_at"),
)

budgets = Table(
    "budgets",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("scope", String(20), nullable=False),
    Column("scope_id", NAME, nullable=False),
    Column("period", String(20), nullable=False),
    Column("soft_limit_nanos", BigInteger, nullable=True),
    Column("hard_limit_nanos", BigInteger, nullable=True),
    Column("on_soft", String(20), nullable=False),
    Column("approval_workflow", NAME, nullable=True),
    _at("created_at"),
    UniqueConstraint("account_id", "name"),
)

budget_counters = Table(  # one row per budget and period: locked while reserving
    "budget_counters",
    metadata,
    Column("budget_id", ID, ForeignKey("budgets.id", ondelete="CASCADE"), primary_key=True),
    Column("period_start", UtcDateTime(), primary_key=True),
    Column("spent_nanos", BigInteger, nullable=False),
    Column("soft_notified", Boolean, nullable=False),
    Column("approval_id", ID, nullable=True),
    Column("approval_status", String(20), nullable=True),
)

budget_reservations = Table(  # an admitted request's estimate until it is settled
    "budget_reservations",
    metadata,
    Column("id", ID, primary_key=True),
    Column("budget_id", ID, primary_key=True),
    Column("period_start", UtcDateTime(), nullable=False),
    Column("amount_nanos", BigInteger, nullable=False),
    _at("expires_at"),
    ForeignKeyConstraint(
        ["budget_id", "period_start"],
        ["budget_counters.budget_id", "budget_counters.period_start"],
        ondelete="CASCADE",
    ),
    Index(None, "budget_id", "period_start"),
)

model_prices = Table(  # per-account price overrides, per million tokens
    "model_prices",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("model", NAME, primary_key=True),
    Column("input_nanos", BigInteger, nullable=False),
    Column("output_nanos", BigInteger, nullable=False),
    Column("cached_nanos", BigInteger, nullable=True),
)
# --- gateway: custody, providers, runtime tokens --------------------------------------------
providers = Table(  # model providers; the key lives in custody, named by ``secret_ref``
    "providers",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("secret_ref", String(500), nullable=False),
    Column("models", JSON, nullable=False),
    Column("aliases", JSON, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("account_id", "name"),
)

secrets = Table(  # local_encrypted: AES-GCM ciphertexts, never the plaintext
    "secrets",
    metadata,
    Column("account_id", ID, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("key_id", String(64), nullable=False),
    _at("created_at"),
    _at("updated_at"),
)

flow_executions = Table(
    "flow_executions",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("flow", NAME, nullable=False),
    Column("principal", String(320), nullable=False),
    _at("created_at"),
    Column("labels", JSON, nullable=False),
    Index(None, "account_id", "created_at"),
)

runtime_tokens = Table(
    "runtime_tokens",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column(
        "execution_id", ID, ForeignKey("flow_executions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("flow", NAME, nullable=False),
    Column("principal", String(320), nullable=False),
    Column("token_hash", HASH, nullable=False, unique=True),  # the token is never stored
    _at("created_at"),
    _at("expires_at"),
    Column("models", JSON, nullable=False),
    _at("revoked_at", nullable=True),
    Index(None, "account_id", "execution_id"),
)

# --- issue trackers: connected trackers, synced issues, cursors, the webhook inbox ----------
# (migration 0015; docs/decisions/0087). A tracker's synced projects are a JSON list on its
# row: they are read and written with the tracker, never looked up on their own. Everything
# synced from a tracker references it with a tenant-safe (account_id, tracker_id) foreign key
# and goes with it.
PROJECT = String(500)  # GitLab's full paths nest groups
REF = String(500)  # a custody reference (local:, env:, vault:PATH#FIELD)

trackers = Table(
    "trackers",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("name", NAME, nullable=False),
    Column("kind", String(20), nullable=False),
    Column("base_url", Text, nullable=False),
    Column("token_ref", REF, nullable=False),
    Column("projects", JSON, nullable=False),
    Column("webhook_secret_ref", REF, nullable=True),
    Column("username", String(320), nullable=True),
    Column("poll_seconds", Integer, nullable=False),
    _at("next_poll_at", nullable=True),
    _at("created_at"),
    _at("updated_at"),
    UniqueConstraint("account_id", "name"),
    UniqueConstraint("account_id", "id"),  # the target of the synced rows' foreign keys
    Index(None, "next_poll_at"),  # due polls, across accounts
)


def _of_tracker() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        ["account_id", "tracker_id"], ["trackers.account_id", "trackers.id"], ondelete="CASCADE"
    )


issues = Table(
    "issues",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("tracker_id", ID, nullable=False),
    Column("project", PROJECT, nullable=False),
    Column("number", String(100), nullable=False),
    Column("key", String(700), nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", NAME, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("assignees", JSON, nullable=False),
    Column("priority", NAME, nullable=True),
    Column("author", String(320), nullable=False),
    Column("url", Text, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    _at("synced_at"),
    Column("deleted", Boolean, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("extra", JSON, nullable=False),
    _of_tracker(),
    UniqueConstraint("account_id", "tracker_id", "external_id"),  # what upsert keys on
    UniqueConstraint("account_id", "id"),  # the target of the comments' foreign key
    Index(None, "account_id", "tracker_id", "project", "number"),
    Index(None, "account_id", "key"),
    Index(None, "account_id", "url"),
    Index(None, "account_id", "updated_at"),
)

issue_comments = Table(
    "issue_comments",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("tracker_id", ID, nullable=False),
    Column("issue_id", ID, nullable=False),
    Column("external_id", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("author", String(320), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("url", Text, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    _at("synced_at"),
    Column("deleted", Boolean, nullable=False),
    ForeignKeyConstraint(
        ["account_id", "issue_id"], ["issues.account_id", "issues.id"], ondelete="CASCADE"
    ),
    UniqueConstraint("account_id", "issue_id", "external_id"),  # upsert's key; the listing's
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    _account_id(),
    Column("tracker_id", ID, nullable=False),
    Column("project", PROJECT, nullable=False),
    _at("updated_since", nullable=True),
    Column("etag", String(500), nullable=True),
    Column("page", Text, nullable=True),
    _at("page_since", nullable=True),
    _at("full_scan_started_at", nullable=True),
    _at("last_full_scan_at", nullable=True),
    _at("last_sync_at", nullable=True),
    Column("last_error", Text, nullable=True),
    Column("issues_synced", Integer, nullable=False),
    PrimaryKeyConstraint("account_id", "tracker_id", "project"),
    _of_tracker(),
)

webhook_deliveries = Table(  # the durable inbox: verified deliveries until processed
    "webhook_deliveries",
    metadata,
    Column("id", ID, primary_key=True),
    _account_id(),
    Column("tracker_id", ID, nullable=False),
    Column("delivery_id", String(200), nullable=False),
    Column("event", NAME, nullable=False),
    Column("payload", JSON, nullable=False),
    _at("received_at"),
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    _at("claimed_until", nullable=True),
    _at("processed_at", nullable=True),
    Column("error", Text, nullable=True),
    _of_tracker(),
    UniqueConstraint("account_id", "tracker_id", "delivery_id"),  # a replay is refused
    Index(None, "state", "received_at"),  # the pending ones, oldest first, across accounts
    Index(None, "account_id", "received_at"),
)


# --- issue 16, s-index: the vector index of synced issues (migration 0017) -------------------
# One row per (account, issue, embedder identity). ``data`` holds the vector as little-endian
# float32 on every database; on PostgreSQL with pgvector, migration 0017 adds an untyped
# ``embedding vector`` column the store writes too, and the store creates one partial HNSW
# index per model (``ix_issue_vectors_hnsw_<hash>``): neither is declared here, since whether
# they exist depends on the server (``UNDECLARED``). Removing an issue (or its tracker, or its
# account) removes its vectors (docs/decisions/0099-sql-issue-vectors.md).
issue_vectors = Table(
    "issue_vectors",
    metadata,
    _account_id(),
    Column("issue_id", ID, nullable=False),
    Column("model", String(300), nullable=False),  # the embedder's identity, provider:model@dims
    Column("content_hash", String(64), nullable=False),
    _at("embedded_at"),
    Column("data", LargeBinary, nullable=False),
    PrimaryKeyConstraint("account_id", "issue_id", "model"),
    ForeignKeyConstraint(
        ["account_id", "issue_id"], ["issues.account_id", "issues.id"], ondelete="CASCADE"
    ),
    Index(None, "model", "account_id", "issue_id"),  # one model's vectors of one account
)


class PgVector(UserDefinedType[Any]):
    """pgvector's ``vector`` (untyped: any dimensions), known to reflection so that comparing
    a migrated PostgreSQL schema with ``metadata`` does not warn about it; never declared."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "vector"


postgresql_base.ischema_names.setdefault("vector", PgVector)

# Schema objects migrations make that ``metadata`` cannot declare (they depend on the database
# server): the schema comparison (tests/contract/test_sql_schema.py) leaves them out.
UNDECLARED_COLUMNS = {("issue_vectors", "embedding")}  # pgvector's column, when it exists
UNDECLARED_INDEX_PREFIXES = (
    "ix_issue_vectors_hnsw_",  # one per model, made by the store
    "ix_issues_search_tsv",  # PostgreSQL: the GIN index of full text (an expression)
    "ix_gateway_interactions_fts",  # PostgreSQL: the GIN index of captured interactions
)
UNDECLARED_TABLE_PREFIXES = (  # SQLite: FTS5 tables, their shadow tables and rows
    "issues_fts",
    "issue_search_rows",
    "gateway_interactions_fts",
)


def declared(name: str | None, type_: str, parent: dict[str, str | None]) -> bool:
    """Whether the reflected object ``name`` (of alembic's ``include_name`` kinds) belongs to
    the compared schema (everything but the ``UNDECLARED_*`` objects)."""
    if name is None:
        return True
    if type_ == "table":
        return not name.startswith(UNDECLARED_TABLE_PREFIXES)
    if type_ == "index":
        return not name.startswith(UNDECLARED_INDEX_PREFIXES)
    if type_ == "column":
        return (parent.get("table_name"), name) not in UNDECLARED_COLUMNS
    return True


# --- compliance (issue 16, s-compliance): the cache of model-scored compliance answers --------
compliance_results = Table(  # one answer per issue, metric, mode and engine (hub/compliance)
    "compliance_results",
    metadata,
    _account_id(),
    Column("issue_id", ID, nullable=False),
    Column("metric", String(40), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("engine", String(300), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("catalogue", String(64), nullable=False),
    Column("result", JSON, nullable=False),
    _at("created_at"),
    PrimaryKeyConstraint("account_id", "issue_id", "metric", "mode", "engine"),
    ForeignKeyConstraint(
        ["account_id", "issue_id"], ["issues.account_id", "issues.id"], ondelete="CASCADE"
    ),
)
# --- issue 16, s-capture: gateway content capture (migration 0020) --------------------------
# The runtime session a gateway request belongs to when it names one (X-Preloop-Session-Id).
usage_records.append_column(Column("session_id", ID, nullable=True))
Index(None, usage_records.c.account_id, usage_records.c.session_id)

gateway_capture_rules = Table(  # what is captured, per account, flow or API key
    "gateway_capture_rules",
    metadata,
    _account_id(),
    Column("scope", String(20), nullable=False),
    Column("subject", NAME, nullable=False),
    Column("mode", String(20), nullable=False),
    Column("max_bytes", Integer, nullable=False),
    Column("retention_days", Integer, nullable=False),
    _at("created_at"),
    _at("updated_at"),
    Column("updated_by", DECIDER, nullable=False),
    PrimaryKeyConstraint("account_id", "scope", "subject"),
)

gateway_interactions = Table(  # captured gateway requests (redacted), until expires_at
    "gateway_interactions",
    metadata,
    Column("id", ID, primary_key=True),  # the usage record's id
    _account_id(),
    Column("principal", NAME, nullable=False),
    Column("api_key_id", ID, nullable=False),
    Column("flow", NAME, nullable=True),
    Column("execution_id", ID, nullable=True),
    Column("session_id", ID, nullable=True),
    Column("endpoint", String(40), nullable=False),
    Column("model", NAME, nullable=False),
    Column("provider", NAME, nullable=False),
    Column("status", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    _at("created_at"),
    _at("expires_at"),
    Column("mode", String(20), nullable=False),
    Column("request", Text, nullable=True),
    Column("response", Text, nullable=True),
    Column("truncated", Boolean, nullable=False),
    # request and response: what full-text search reads (SQLite: the FTS5 table
    # gateway_interactions_fts kept by triggers; PostgreSQL: a GIN index on its tsvector)
    Column("search_text", Text, nullable=False),
    Column("vector", LargeBinary, nullable=True),  # float32, for similarity search
    Column("vector_model", NAME, nullable=True),  # the embedder identity that made it
    Index(None, "account_id", "created_at"),
    Index(None, "account_id", "execution_id"),
    Index(None, "account_id", "session_id"),
    Index(None, "expires_at"),
)
# Made by migration 0020 for one dialect only, so not declared here (``UNDECLARED_*`` above):
# SQLite's FTS5 table (and its shadow tables), PostgreSQL's GIN index on
# ``to_tsvector('simple', search_text)``.
# --- duplicate detection (issue 16, part s-dupes; migration 0018; decision 0105) ------------
# One row per pair of issues (``issue_a < issue_b``): the model's latest verdict (with the
# model and both content hashes it judged) and a person's resolution, in separate columns so
# that neither write overwrites the other. Both issues cascade: a removed tracker takes its
# pairs along.
duplicate_pairs = Table(
    "duplicate_pairs",
    metadata,
    _account_id(),
    Column("issue_a", ID, nullable=False),
    Column("issue_b", ID, nullable=False),
    Column("verdict_model", NAME, nullable=True),
    Column("verdict_hash_a", String(64), nullable=True),
    Column("verdict_hash_b", String(64), nullable=True),
    Column("verdict", String(20), nullable=True),
    Column("verdict_reason", Text, nullable=True),
    Column("verdict_suggestion", Text, nullable=True),
    _at("verdict_at", nullable=True),
    Column("resolution", String(20), nullable=True),
    Column("canonical_id", ID, nullable=True),
    Column("resolved_by", DECIDER, nullable=True),
    _at("resolved_at", nullable=True),
    PrimaryKeyConstraint("account_id", "issue_a", "issue_b"),
    ForeignKeyConstraint(
        ["account_id", "issue_a"], ["issues.account_id", "issues.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["account_id", "issue_b"], ["issues.account_id", "issues.id"], ondelete="CASCADE"
    ),
    Index(None, "account_id", "issue_b"),  # the pairs of an issue on the pair's second side
)
