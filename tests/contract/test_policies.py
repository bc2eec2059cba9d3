"""Policy versions (compare-and-set by version number) and the active workflows."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import ConflictError, NotFoundError, ValidationError
from hub.ports import Storage

from .records import new_account, policy, workflow


async def test_versions_round_trip_newest_first(storage: Storage) -> None:
    account_id = await new_account(storage)
    versions = [policy(account_id, n, name=f"v{n}", created_by="key_admin") for n in (1, 2, 3)]
    for version in versions:
        await storage.policies.add(version)

    assert versions[2] == await storage.policies.latest(account_id)
    assert versions[0] == await storage.policies.get(account_id, 1)
    assert [v.version for v in await storage.policies.list(account_id)] == [3, 2, 1]
    assert await storage.policies.get(account_id, 4) is None


async def test_no_versions_yet(storage: Storage) -> None:
    account_id = await new_account(storage)

    assert await storage.policies.latest(account_id) is None
    assert list(await storage.policies.list(account_id)) == []


async def test_an_existing_version_number_conflicts(storage: Storage) -> None:
    account_id = await new_account(storage)
    await storage.policies.add(policy(account_id, 1, source="first\n"))

    with pytest.raises(ConflictError):
        await storage.policies.add(policy(account_id, 1, source="second\n"))
    found = await storage.policies.get(account_id, 1)
    assert found is not None
    assert found.source == "first\n"


async def test_concurrent_applies_of_one_version_let_exactly_one_win(storage: Storage) -> None:
    account_id = await new_account(storage)
    attempts = [policy(account_id, 1, source=f"attempt {n}\n") for n in range(5)]

    results = await asyncio.gather(
        *(storage.policies.add(p) for p in attempts), return_exceptions=True
    )

    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, ConflictError) for r in results if r is not None)
    assert len(await storage.policies.list(account_id)) == 1


async def test_versions_are_per_account(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    await storage.policies.add(policy(mine, 1))
    await storage.policies.add(policy(theirs, 1))
    await storage.policies.add(policy(theirs, 2))

    assert [v.version for v in await storage.policies.list(mine)] == [1]
    with pytest.raises(NotFoundError):
        await storage.policies.add(policy("acct_missing", 1))


async def test_replace_all_makes_the_given_workflows_the_whole_set(storage: Storage) -> None:
    account_id = await new_account(storage)
    await storage.workflows.replace_all(
        account_id, [workflow(account_id, "oncall"), workflow(account_id, "finance")]
    )
    current = [workflow(account_id, "security", 2), workflow(account_id, "oncall", 2)]

    await storage.workflows.replace_all(account_id, current)

    assert [w.name for w in await storage.workflows.list(account_id)] == ["oncall", "security"]
    assert current[0] == await storage.workflows.get(account_id, "security")
    assert await storage.workflows.get(account_id, "finance") is None
    await storage.workflows.replace_all(account_id, [])
    assert list(await storage.workflows.list(account_id)) == []


async def test_a_failed_replace_all_changes_nothing(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)
    before = [workflow(mine, "oncall")]
    await storage.workflows.replace_all(mine, before)

    with pytest.raises(ConflictError):
        await storage.workflows.replace_all(mine, [workflow(mine, "a"), workflow(mine, "a")])
    with pytest.raises(ValidationError):
        await storage.workflows.replace_all(mine, [workflow(theirs, "b")])
    with pytest.raises(NotFoundError):
        await storage.workflows.replace_all("acct_missing", [])

    assert before == list(await storage.workflows.list(mine))
    assert list(await storage.workflows.list(theirs)) == []
    assert await storage.workflows.get(theirs, "oncall") is None
