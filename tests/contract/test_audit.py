"""The hash-chained audit log: appends, the chain, queries, tenants."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest

from hub.audit_chain import GENESIS_HASH, verify_chain
from hub.errors import NotFoundError, ValidationError
from hub.ports import AuditQuery, Storage
from hub.records import AuditDraft

from .records import at, draft, new_account


async def test_append_chains_events_from_genesis(storage: Storage) -> None:
    account_id = await new_account(storage)
    assert await storage.audit.head(account_id) is None

    first = await storage.audit.append(draft(account_id, "key.created", key_id="key_1"))
    second = await storage.audit.append(draft(account_id, "tool.call", seconds=1, tool="read"))

    assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
    assert (2, first.hash) == (second.seq, second.prev_hash)
    assert [first, second] == list(await storage.audit.all(account_id))
    assert (2, second.hash) == await storage.audit.head(account_id)
    assert verify_chain(await storage.audit.all(account_id), head=(2, second.hash)).ok


async def test_event_data_round_trips_as_json(storage: Storage) -> None:
    account_id = await new_account(storage)
    data: dict[str, Any] = {
        "args": {"path": "/tmp/x", "depth": 2, "ratio": 0.1, "on": True, "none": None},
        "list": [1, "two", 3.5, [4], {"five": 5}],
        "text": 'naïve ✓ "quoted" \\ back',
        "big": 2**53 + 1,
        "when": at(7),
        "pair": (1, 2),
    }
    appended = await storage.audit.append(
        AuditDraft(account_id=account_id, kind="tool.call", actor="key_1", at=at(), data=data)
    )

    [stored] = await storage.audit.all(account_id)

    assert appended == stored
    assert stored.data["when"] == "2026-01-01T12:00:07Z"
    assert stored.data["pair"] == [1, 2]
    assert stored.data["big"] == 2**53 + 1
    assert verify_chain([stored], head=await storage.audit.head(account_id)).ok


async def test_concurrent_appends_never_share_a_seq_nor_fork(storage: Storage) -> None:
    account_id = await new_account(storage)
    count = 40

    appended = await asyncio.gather(
        *(storage.audit.append(draft(account_id, seconds=n, n=n)) for n in range(count))
    )

    events = await storage.audit.all(account_id)
    report = verify_chain(events, head=await storage.audit.head(account_id))
    assert report.ok, report.problems
    assert list(range(1, count + 1)) == [e.seq for e in events]
    assert sorted(e.seq for e in appended) == [e.seq for e in events]
    assert set(range(count)) == {e.data["n"] for e in events}


async def test_chains_are_per_account_and_isolated(storage: Storage) -> None:
    mine, theirs = await new_account(storage), await new_account(storage)

    await asyncio.gather(
        *(storage.audit.append(draft(acct, seconds=n)) for n in range(6) for acct in (mine, theirs))
    )
    await storage.audit.append(draft(mine, "secret.read", seconds=9, actor="key_mine"))

    assert [e.seq for e in await storage.audit.all(mine)] == [1, 2, 3, 4, 5, 6, 7]
    assert all(e.account_id == theirs for e in await storage.audit.all(theirs))
    assert len(await storage.audit.all(theirs)) == 6
    assert list(await storage.audit.query(theirs, AuditQuery(kind="secret.read"))) == []
    assert list(await storage.audit.query(theirs, AuditQuery(actor="key_mine"))) == []
    for account_id in (mine, theirs):
        events = await storage.audit.all(account_id)
        assert verify_chain(events, head=await storage.audit.head(account_id)).ok


async def test_append_for_an_unknown_account_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.audit.append(draft("acct_missing"))
    assert await storage.audit.head("acct_missing") is None


async def test_naive_event_time_is_refused(storage: Storage) -> None:
    account_id = await new_account(storage)
    naive = AuditDraft(account_id=account_id, kind="x", actor="y", at=datetime(2026, 1, 1))

    with pytest.raises(ValidationError):
        await storage.audit.append(naive)
    assert await storage.audit.head(account_id) is None


@pytest.fixture
async def log(storage: Storage) -> tuple[Storage, str]:
    """An account with a small, varied audit log: seq n happens at ``at(n * 10)``."""
    account_id = await new_account(storage)
    rows: list[tuple[str, str, dict[str, Any]]] = [
        ("tool.call", "key_agent", {"tool": "read", "decision": "allow", "ms": 12}),
        ("tool.call", "key_agent", {"tool": "delete", "decision": "deny", "ms": 3}),
        ("policy.applied", "key_admin", {"version": 2}),
        ("tool.called", "key_agent", {"tool": "read", "decision": "allow", "ms": 12.0}),
        ("tool.call", "key_other", {"tool": "read", "decision": "require_approval", "flag": True}),
        ("toolbox.opened", "key_agent", {"flag": 1, "note": None}),
        ("tool.call", "key_agent", {"tool": "write", "decision": "allow", "note": "1"}),
    ]
    for n, (kind, actor, data) in enumerate(rows, start=1):
        await storage.audit.append(
            AuditDraft(account_id=account_id, kind=kind, actor=actor, at=at(n * 10), data=data)
        )
    return storage, account_id


async def _seqs(log: tuple[Storage, str], **query: Any) -> list[int]:
    storage, account_id = log
    return [e.seq for e in await storage.audit.query(account_id, AuditQuery(**query))]


async def test_query_defaults_to_newest_first(log: tuple[Storage, str]) -> None:
    assert await _seqs(log) == [7, 6, 5, 4, 3, 2, 1]
    assert await _seqs(log, newest_first=False) == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "tool.call"}, [1, 2, 5, 7]),
        ({"kind": "tool."}, [1, 2, 4, 5, 7]),  # a prefix ends with "."; "toolbox" is not in it
        ({"kind": "TOOL."}, []),
        ({"kind": "tool"}, []),
        ({"actor": "key_admin"}, [3]),
        ({"since": at(30)}, [3, 4, 5, 6, 7]),  # inclusive
        ({"until": at(30)}, [1, 2]),  # exclusive
        ({"since": at(20), "until": at(50)}, [2, 3, 4]),
        ({"after_seq": 5}, [6, 7]),
        ({"before_seq": 3}, [1, 2]),
        ({"after_seq": 2, "before_seq": 6}, [3, 4, 5]),
        ({"limit": 2}, [1, 2]),
        ({"limit": 0}, []),
        ({"kind": "tool.", "actor": "key_agent", "after_seq": 1, "limit": 2}, [2, 4]),
        ({"text": "DELETE"}, [2]),  # in the data, ignoring case
        ({"text": "key_admin"}, [3]),  # the actor
        ({"text": "toolbox"}, [6]),  # the kind
        ({"text": "read"}, [1, 4, 5]),
        ({"text": "50%_"}, []),  # no wildcards
        ({"text": "approval", "actor": "key_other"}, [5]),
    ],
)
async def test_query_filters(
    log: tuple[Storage, str], query: dict[str, Any], expected: list[int]
) -> None:
    assert expected == await _seqs(log, newest_first=False, **query)


async def test_newest_first_applies_before_the_limit(log: tuple[Storage, str]) -> None:
    assert await _seqs(log, kind="tool.call", limit=2) == [7, 5]
    assert await _seqs(log, after_seq=5, limit=5) == [7, 6]
    assert await _seqs(log, before_seq=6, limit=2) == [5, 4]  # the next page, keyset by seq


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"tool": "read"}, [1, 4, 5]),
        ({"tool": "read", "decision": "allow"}, [1, 4]),
        ({"ms": 12}, [1, 4]),  # JSON numbers: 12 equals 12.0
        ({"ms": 12.0}, [1, 4]),
        ({"flag": True}, [5]),  # ... but true is not 1
        ({"flag": 1}, [6]),
        ({"note": None}, [6]),  # an explicit null, not a missing key
        ({"note": "1"}, [7]),
        ({"version": "2"}, []),
        ({"missing": "x"}, []),
    ],
)
async def test_query_match_compares_top_level_json_values(
    log: tuple[Storage, str], match: dict[str, Any], expected: list[int]
) -> None:
    assert expected == await _seqs(log, newest_first=False, match=match)


@pytest.mark.parametrize(
    "query",
    [
        AuditQuery(limit=-1),
        AuditQuery(after_seq=-1),
        AuditQuery(before_seq=-1),
        AuditQuery(since=datetime(2026, 1, 1)),
        AuditQuery(match={"args": {"path": "/"}}),
        AuditQuery(match={'we"ird': 1}),
    ],
)
async def test_queries_no_backend_can_answer_alike_are_refused(
    log: tuple[Storage, str], query: AuditQuery
) -> None:
    storage, account_id = log
    with pytest.raises(ValidationError):
        await storage.audit.query(account_id, query)
