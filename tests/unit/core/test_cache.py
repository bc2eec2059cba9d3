"""The hot-path cache: entries age out, writes through the services apply at once."""

from __future__ import annotations

import msgspec
import pytest

from hub.auditing import Auditor
from hub.cache import MISSING, Recent
from hub.catalog import CatalogService
from hub.clock import FrozenClock
from hub.errors import AuthenticationError
from hub.identity import IdentityService
from hub.memory import InMemoryStorage
from hub.policy_versions import PolicyService
from hub.records import Role

POLICY = """\
version: "1.0"
metadata: {name: cache test}
tools:
  - {name: echo, action: %s}
"""


class Timer:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_their_time() -> None:
    timer = Timer()
    cache: Recent[str, int | None] = Recent(2.0, timer=timer)
    cache.put("a", 1)
    cache.put("none", None)
    timer.now += 1.9
    assert cache.get("a") == 1
    assert cache.get("none") is None  # None is a value, not a miss
    timer.now += 0.1
    assert cache.get("a") is MISSING
    assert cache.get("never") is MISSING


async def test_load_reads_once_and_load_found_never_caches_a_miss() -> None:
    timer = Timer()
    reads: list[str] = []
    found: dict[str, int] = {}

    async def read(key: str) -> int | None:
        reads.append(key)
        return found.get(key)

    cache: Recent[str, int | None] = Recent(2.0, timer=timer)
    assert await cache.load("a", lambda: read("a")) is None
    assert await cache.load("a", lambda: read("a")) is None  # a miss is a value for load
    assert reads == ["a"]

    kept: Recent[str, int] = Recent(2.0, timer=timer)
    assert await kept.load_found("b", lambda: read("b")) is None
    found["b"] = 7
    assert await kept.load_found("b", lambda: read("b")) == 7  # created meanwhile: seen
    assert await kept.load_found("b", lambda: read("b")) == 7
    assert reads == ["a", "b", "b"]
    timer.now += 2.0
    assert await kept.load_found("b", lambda: read("b")) == 7
    assert reads == ["a", "b", "b", "b"]


def test_the_oldest_entry_goes_when_full_and_zero_seconds_caches_nothing() -> None:
    cache: Recent[int, int] = Recent(60, limit=3)
    for n in range(4):
        cache.put(n, n)
    assert [cache.get(n) for n in range(4)] == [MISSING, 1, 2, 3]
    off: Recent[str, int] = Recent(0)
    off.put("a", 1)
    assert off.get("a") is MISSING


async def test_a_revoked_key_is_refused_at_once_although_cached() -> None:
    storage, clock = InMemoryStorage(), FrozenClock()
    identity = IdentityService(storage, clock, Auditor(storage.audit, clock), cache_seconds=60)
    account = await identity.default_account()
    created = await identity.create_key(account.id, name="agent", role=Role.AGENT, actor="t")
    assert (await identity.authenticate(created.secret)).key_id == created.key.id  # now cached

    await identity.revoke_key(account.id, created.key.id, actor="t")

    with pytest.raises(AuthenticationError, match="revoked"):
        await identity.authenticate(created.secret)


async def test_an_applied_policy_is_active_at_once_although_the_old_one_is_cached() -> None:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    account = await IdentityService(storage, clock, auditor).default_account()
    policies = PolicyService(storage, clock, auditor, cache_seconds=60)
    await policies.apply(account.id, POLICY % "allow", actor="t")
    first = await policies.active(account.id)
    assert first is not None
    assert first[0].version == 1

    await policies.apply(account.id, POLICY % "deny", actor="t")

    second = await policies.active(account.id)
    assert second is not None
    assert second[0].version == 2


async def test_a_policy_applied_by_another_replica_is_read_once_forgotten() -> None:
    # The MCP gateway forgets the cached version when another replica's policy.applied
    # event arrives, so agents told that their tools changed list from the new policy.
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    account = await IdentityService(storage, clock, auditor).default_account()
    here = PolicyService(storage, clock, auditor, cache_seconds=60)
    elsewhere = PolicyService(storage, clock, auditor, cache_seconds=60)

    async def version() -> int:
        active = await here.active(account.id)
        assert active is not None
        return active[0].version

    await here.apply(account.id, POLICY % "allow", actor="t")
    assert 1 == await version()
    await elsewhere.apply(account.id, POLICY % "deny", actor="t")
    assert 1 == await version()  # cached
    here.forget(account.id)
    assert 2 == await version()


async def test_a_change_made_elsewhere_is_seen_when_caching_is_off() -> None:
    storage, clock = InMemoryStorage(), FrozenClock()
    auditor = Auditor(storage.audit, clock)
    account = await IdentityService(storage, clock, auditor).default_account()
    tool = {"name": "echo", "description": "v1", "inputSchema": {"type": "object"}}
    catalog = CatalogService(storage, clock, auditor, cache_seconds=0)
    [record] = await catalog.sync(account.id, "demo", [tool])
    assert not await catalog.blocked(account.id, "demo", "echo")

    # another replica records a changed definition straight in the shared storage
    await storage.tools.upsert(msgspec.structs.replace(record, definition_hash="changed"))

    assert await catalog.blocked(account.id, "demo", "echo")
