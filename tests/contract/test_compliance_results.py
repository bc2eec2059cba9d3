"""The compliance cache (hub/compliance/ports.py ``ComplianceResults``) on every backend: kept
and replaced per (account, issue, metric, mode, engine); in SQL removed with its issue."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hub.compliance.memory import InMemoryComplianceResults
from hub.compliance.ports import ComplianceResults
from hub.compliance.records import ComplianceResult
from hub.errors import NotFoundError
from hub.ports import Storage
from hub.trackers.ports import TrackerStorage
from server.db import SqlStorage
from server.db.stores.compliance import SqlComplianceResults

from .conftest import SQL_BACKENDS
from .records import new_account
from .test_trackers import issue, tracker

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def results(storage: Storage) -> ComplianceResults:
    if isinstance(storage, SqlStorage):
        return SqlComplianceResults(storage.database)
    return InMemoryComplianceResults()


def result(account: str, issue_id: str, **extra: Any) -> ComplianceResult:
    fields: dict[str, Any] = {
        "account_id": account,
        "issue_id": issue_id,
        "metric": "DoR",
        "mode": "estimate",
        "engine": "model:gpt-fake",
        "content_hash": "a" * 64,
        "catalogue": "c" * 64,
        "result": {"compliance_factor": 0.5, "reason": "r", "annotated_description": []},
        "created_at": T0,
    }
    return ComplianceResult(**(fields | extra))


async def test_a_result_is_kept_replaced_and_kept_apart_per_key(
    storage: Storage, trackers: TrackerStorage, results: ComplianceResults
) -> None:
    account = await new_account(storage, "acme")
    trk = tracker(account)
    await trackers.trackers.add(trk)
    one = await trackers.issues.upsert(issue(trk, 1))
    two = await trackers.issues.upsert(issue(trk, 2))
    kept = result(account, one.id)

    assert await results.get(account, one.id, "DoR", "estimate", "model:gpt-fake") is None
    await results.put(kept)
    assert kept == await results.get(account, one.id, "DoR", "estimate", "model:gpt-fake")

    newer = result(account, one.id, content_hash="b" * 64, result={"compliance_factor": 1.0})
    await results.put(newer)
    assert newer == await results.get(account, one.id, "DoR", "estimate", "model:gpt-fake")

    for key in (
        (two.id, "DoR", "estimate", "model:gpt-fake"),
        (one.id, "Risk", "estimate", "model:gpt-fake"),
        (one.id, "DoR", "improve", "model:gpt-fake"),
        (one.id, "DoR", "estimate", "model:other"),
    ):
        assert await results.get(account, *key) is None  # type: ignore[arg-type]
    other = await new_account(storage, "globex")
    assert await results.get(other, one.id, "DoR", "estimate", "model:gpt-fake") is None


@pytest.mark.parametrize("backend_url", SQL_BACKENDS, indirect=True)
async def test_sql_refuses_an_unknown_issue_and_drops_results_with_their_tracker(
    storage: Storage, trackers: TrackerStorage, results: ComplianceResults
) -> None:
    account = await new_account(storage, "acme")
    trk = tracker(account)
    await trackers.trackers.add(trk)
    one = await trackers.issues.upsert(issue(trk, 1))
    await results.put(result(account, one.id))

    with pytest.raises(NotFoundError, match="issue 'iss_nope' does not exist"):
        await results.put(result(account, "iss_nope"))
    await trackers.trackers.remove(account, trk.id)
    assert await results.get(account, one.id, "DoR", "estimate", "model:gpt-fake") is None


async def test_the_migration_adds_the_table_and_takes_it_away_again(empty_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect
    from sqlalchemy.engine import Connection

    from server.db import make_engine, upgrade_database
    from server.db.migrate import alembic_config

    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    def down_to_0016(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0016")

    async def run(work: Any) -> Any:
        engine = make_engine(empty_url)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(work)
        finally:
            await engine.dispose()

    await upgrade_database(empty_url)
    assert "compliance_results" in await run(names)
    await run(down_to_0016)
    after = await run(names)
    assert "compliance_results" not in after
    assert "issues" in after  # what came before stays
