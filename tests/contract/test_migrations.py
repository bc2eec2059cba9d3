"""SQL only: migrations carry existing data forward (and back) on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from sqlalchemy import MetaData, inspect, select
from sqlalchemy.engine import Connection

from hub.records import ApprovalStatus, VoteChoice
from server.db import current_revision, head_revision, make_engine, open_storage, upgrade_database
from server.db.migrate import alembic_config

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NEW_COLUMNS = {"approvers", "claimed_at", "result"}


async def _run(url: str, work: Callable[[Connection], Any]) -> Any:
    """``work`` on a connection of ``url``, in one committed transaction."""
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _migrate(direction: str, revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)

    return run


def _insert_at_0001(connection: Connection) -> None:
    """Rows as the 0001 schema holds them, written through the reflected (old) tables."""
    tables = MetaData()
    tables.reflect(connection, only=["accounts", "approval_requests", "approval_votes"])
    connection.execute(
        tables.tables["accounts"].insert().values(id="acct_1", name="acme", created_at=T0)
    )
    connection.execute(
        tables.tables["approval_requests"]
        .insert()
        .values(
            id="apr_1",
            account_id="acct_1",
            status="approved",
            principal_key_id="key_agent",
            server="files",
            tool="delete",
            args_digest="sha256:abc",
            args={"path": "/tmp/x"},
            justification=None,
            policy_version=1,
            workflow="default",
            rule="deletes",
            reason="deletes need a human",
            required_approvals=1,
            created_at=T0,
            expires_at=None,
            decided_at=T0,
            decided_by="user_alice",
            comment=None,
        )
    )
    connection.execute(
        tables.tables["approval_votes"]
        .insert()
        .values(
            request_id="apr_1",
            account_id="acct_1",
            approver="user_alice",
            choice="approve",
            comment="",
            channel="api",
            created_at=T0,
        )
    )


def _columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("approval_requests")}


def _rows_at_0001(connection: Connection) -> tuple[list[Any], list[Any]]:
    tables = MetaData()
    tables.reflect(connection, only=["approval_requests", "approval_votes"])
    requests, votes = tables.tables["approval_requests"], tables.tables["approval_votes"]
    return (
        list(connection.execute(select(requests.c.id, requests.c.status, requests.c.args))),
        list(connection.execute(select(votes.c.request_id, votes.c.approver))),
    )


async def test_0002_carries_approval_requests_forward_and_back(empty_url: str) -> None:
    await _run(empty_url, _migrate("upgrade", "0001"))
    await _run(empty_url, _insert_at_0001)
    assert "0001" == await current_revision(empty_url)

    await upgrade_database(empty_url)

    assert head_revision() == await current_revision(empty_url)
    assert NEW_COLUMNS <= await _run(empty_url, _columns)
    storage = await open_storage(empty_url, migrate=False)
    try:
        request = await storage.approvals.get("acct_1", "apr_1")
        assert request is not None
        assert ((), None, None) == (request.approvers, request.claimed_at, request.result)
        assert (ApprovalStatus.APPROVED, {"path": "/tmp/x"}, T0) == (
            request.status,
            request.args,
            request.created_at,
        )
        assert [VoteChoice.APPROVE] == [
            v.choice for v in await storage.approvals.votes("acct_1", "apr_1")
        ]
        claimed = await storage.approvals.claim("acct_1", "apr_1", T0)
        assert claimed is not None
        stored = await storage.approvals.store_result("acct_1", "apr_1", {"ok": True})
        assert {"ok": True} == stored.result
    finally:
        await storage.close()

    await _run(empty_url, _migrate("downgrade", "0001"))

    assert "0001" == await current_revision(empty_url)
    assert set() == NEW_COLUMNS & await _run(empty_url, _columns)
    requests, votes = await _run(empty_url, _rows_at_0001)
    assert [("apr_1", "approved", {"path": "/tmp/x"})] == [tuple(r) for r in requests]
    assert [("apr_1", "user_alice")] == [tuple(v) for v in votes]  # no cascade on the way down

    await upgrade_database(empty_url)

    assert head_revision() == await current_revision(empty_url)


def _insert_tool_at_0002(connection: Connection) -> None:
    tables = MetaData()
    tables.reflect(connection, only=["accounts", "tools"])
    connection.execute(
        tables.tables["accounts"].insert().values(id="acct_1", name="acme", created_at=T0)
    )
    connection.execute(
        tables.tables["tools"]
        .insert()
        .values(
            id="tool_1",
            account_id="acct_1",
            server_name="files",
            name="read",
            description="Read a file",
            input_schema={"type": "object"},
            definition_hash="h1",
            pinned_hash="h1",
            first_seen_at=T0,
            updated_at=T0,
        )
    )


def _tool_columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("tools")}


async def test_0003_adds_tool_definitions_and_keeps_tools(empty_url: str) -> None:
    await _run(empty_url, _migrate("upgrade", "0002"))
    await _run(empty_url, _insert_tool_at_0002)

    await upgrade_database(empty_url)

    storage = await open_storage(empty_url, migrate=False)
    try:
        tool = await storage.tools.get("acct_1", "files", "read")
        assert tool is not None
        assert ({}, {}, "Read a file") == (
            tool.definition,
            tool.pinned_definition,
            tool.description,
        )
    finally:
        await storage.close()

    await _run(empty_url, _migrate("downgrade", "0002"))
    assert set() == {"definition", "pinned_definition"} & await _run(empty_url, _tool_columns)
    assert "read" in str(
        await _run(empty_url, lambda c: list(c.exec_driver_sql("SELECT name FROM tools")))
    )


def _insert_key_at_0003(connection: Connection) -> None:
    tables = MetaData()
    tables.reflect(connection, only=["accounts", "api_keys"])
    connection.execute(
        tables.tables["accounts"].insert().values(id="acct_1", name="acme", created_at=T0)
    )
    connection.execute(
        tables.tables["api_keys"]
        .insert()
        .values(
            id="0123456789abcdef",
            account_id="acct_1",
            name="ci",
            role="agent",
            key_hash="h1",
            user_id=None,
            labels={"team": "infra"},
            created_at=T0,
        )
    )


def _key_columns(connection: Connection) -> set[str]:
    return {c["name"] for c in inspect(connection).get_columns("api_keys")}


async def test_0004_adds_key_tool_allow_lists_and_keeps_keys(empty_url: str) -> None:
    await _run(empty_url, _migrate("upgrade", "0003"))
    await _run(empty_url, _insert_key_at_0003)

    await upgrade_database(empty_url)

    storage = await open_storage(empty_url, migrate=False)
    try:
        key = await storage.api_keys.get("0123456789abcdef")
        assert key is not None
        assert ((), {"team": "infra"}) == (key.tools, key.labels)  # every tool, as before
    finally:
        await storage.close()

    await _run(empty_url, _migrate("downgrade", "0003"))
    assert "tools" not in await _run(empty_url, _key_columns)
    assert "0123456789abcdef" in str(
        await _run(empty_url, lambda c: list(c.exec_driver_sql("SELECT id FROM api_keys")))
    )


def test_each_script_is_named_after_its_revision_so_starts_can_skip_alembic() -> None:
    from alembic.script import ScriptDirectory

    from server.db.migrate import shipped_head

    scripts = ScriptDirectory.from_config(alembic_config())
    for script in scripts.walk_revisions():
        assert script.path is not None
        assert Path(script.path).name.split("_", 1)[0] == script.revision
    assert shipped_head() == head_revision()


async def test_a_start_on_a_current_database_reads_the_revision_without_alembic(
    empty_url: str,
) -> None:
    await upgrade_database(empty_url)
    storage = await open_storage(empty_url)
    await storage.close()
    assert head_revision() == await current_revision(empty_url)
    storage = await open_storage(empty_url, migrate=False)
    await storage.close()


async def test_0013_adds_who_decided_by_name_and_keeps_older_decisions(empty_url: str) -> None:
    # Rows decided before names were recorded: no name, no credential; readers fall back to
    # decided_by (decision 0054).
    await _run(empty_url, _migrate("upgrade", "0012"))
    await _run(empty_url, _insert_at_0001)

    await upgrade_database(empty_url)

    storage = await open_storage(empty_url, migrate=False)
    try:
        request = await storage.approvals.get("acct_1", "apr_1")
        assert request is not None
        assert ("user_alice", None, None) == (
            request.decided_by,
            request.decided_by_name,
            request.decided_via,
        )
        [vote] = await storage.approvals.votes("acct_1", "apr_1")
        assert ("user_alice", "", "") == (vote.approver, vote.approver_name, vote.via)
    finally:
        await storage.close()

    await _run(empty_url, _migrate("downgrade", "0012"))
    assert "decided_by_name" not in await _run(empty_url, _columns)
    assert ([("apr_1", "approved", {"path": "/tmp/x"})], [("apr_1", "user_alice")]) == tuple(
        [tuple(row) for row in rows] for rows in await _run(empty_url, _rows_at_0001)
    )


def _insert_linked_user_at_0013(connection: Connection) -> None:
    tables = MetaData()
    tables.reflect(connection, only=["accounts", "users"])
    connection.execute(
        tables.tables["accounts"].insert().values(id="acct_1", name="acme", created_at=T0)
    )
    connection.execute(
        tables.tables["users"]
        .insert()
        .values(
            id="user_ada",
            account_id="acct_1",
            email="ada@example.com",
            name="Ada",
            created_at=T0,
            identities={"slack": "U123", "mattermost": "mm-ada", "email": ""},
        )
    )


async def test_0014_indexes_the_identities_users_linked_before(empty_url: str) -> None:
    await _run(empty_url, _migrate("upgrade", "0013"))
    await _run(empty_url, _insert_linked_user_at_0013)

    await upgrade_database(empty_url)

    storage = await open_storage(empty_url, migrate=False)
    try:
        slack = await storage.users.get_by_identity("acct_1", "slack", "U123")
        mattermost = await storage.users.get_by_identity("acct_1", "mattermost", "mm-ada")
        assert ("user_ada", "user_ada") == (
            slack.id if slack else None,
            mattermost.id if mattermost else None,
        )
        assert await storage.users.get_by_identity("acct_1", "email", "") is None
    finally:
        await storage.close()

    await _run(empty_url, _migrate("downgrade", "0013"))
    assert "user_identities" not in await _run(
        empty_url, lambda c: set(inspect(c).get_table_names())
    )


TRACKER_TABLES = {"trackers", "issues", "issue_comments", "sync_cursors", "webhook_deliveries"}


async def test_0015_adds_the_tracker_tables_and_takes_them_away_again(empty_url: str) -> None:
    await _run(empty_url, _migrate("upgrade", "0014"))
    await _run(empty_url, _insert_linked_user_at_0013)

    await _run(empty_url, _migrate("upgrade", "0015"))

    names = await _run(empty_url, lambda c: set(inspect(c).get_table_names()))
    assert TRACKER_TABLES <= names
    await _run(empty_url, _migrate("downgrade", "0014"))
    names = await _run(empty_url, lambda c: set(inspect(c).get_table_names()))
    assert not TRACKER_TABLES & names
    assert "user_identities" in names  # what came before stays


def _insert_usage_at_0016(connection: Connection) -> None:
    tables = MetaData()
    tables.reflect(connection, only=["accounts", "usage_records"])
    connection.execute(
        tables.tables["accounts"].insert().values(id="acct_1", name="acme", created_at=T0)
    )
    connection.execute(
        tables.tables["usage_records"].insert().values(
            id="use_1", account_id="acct_1", api_key_id="key_1", principal="p", flow=None,
            execution_id=None, endpoint="openai.chat", model="m", upstream_model="m",
            provider="p", input_tokens=1, output_tokens=2, cached_tokens=0, cost_nanos=5,
            latency_ms=1.0, status=200, outcome="ok", stream=False, created_at=T0, error=None,
        )
    )  # fmt: skip


async def test_0020_adds_capture_and_session_ids_and_takes_them_away_again(
    empty_url: str,
) -> None:
    capture = {"gateway_capture_rules", "gateway_interactions"}
    await _run(empty_url, _migrate("upgrade", "0016"))
    await _run(empty_url, _insert_usage_at_0016)

    await _run(empty_url, _migrate("upgrade", "0020"))

    names = await _run(empty_url, lambda c: set(inspect(c).get_table_names()))
    columns = await _run(
        empty_url, lambda c: {col["name"] for col in inspect(c).get_columns("usage_records")}
    )
    kept = await _run(
        empty_url, lambda c: list(c.exec_driver_sql("SELECT id, session_id FROM usage_records"))
    )
    assert capture <= names
    assert "session_id" in columns
    assert [("use_1", None)] == [tuple(row) for row in kept]
    await _run(empty_url, _migrate("downgrade", "0016"))
    names = await _run(empty_url, lambda c: set(inspect(c).get_table_names()))
    kept = await _run(empty_url, lambda c: list(c.exec_driver_sql("SELECT id FROM usage_records")))
    assert not capture & names
    assert not {n for n in names if n.startswith("gateway_interactions")}
    assert [("use_1",)] == [tuple(row) for row in kept]
