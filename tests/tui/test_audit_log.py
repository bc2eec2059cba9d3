"""The Audit screen's filter bar (parsed into the API's query parameters, and the same test
applied to live events) and its keyset paging state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tui.audit_log import PAGE, AuditFilter, AuditLog, FilterError
from tui.feed import ActivityEvent

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def _event(seq: int, kind: str = "tool.call", **data: object) -> ActivityEvent:
    return ActivityEvent(seq=seq, kind=kind, actor="key_a", at=NOW, data=dict(data))


def test_fields_map_to_query_parameters_and_other_words_are_searched() -> None:
    parsed = AuditFilter.parse(
        "tool:push  server:git principal:key_a decision:deny kind:tool. since:2h hotfix main",
        NOW,
    )
    assert {
        "tool": "push",
        "server": "git",
        "actor": "key_a",
        "decision": "deny",
        "kind": "tool.",
        "since": (NOW - timedelta(hours=2)).isoformat(),
        "q": "hotfix main",
    } == parsed.params()


def test_times_are_ages_or_iso_with_a_zone() -> None:
    parsed = AuditFilter.parse("since:7d until:2026-11-24T08:00:00+00:00", NOW)
    assert NOW - timedelta(days=7) == parsed.since
    assert datetime(2026, 11, 24, 8, tzinfo=UTC) == parsed.until
    with pytest.raises(FilterError, match="time zone"):
        AuditFilter.parse("until:2026-11-24T08:00:00", NOW)
    with pytest.raises(FilterError, match="age like"):
        AuditFilter.parse("since:yesterday", NOW)


def test_an_unknown_field_is_refused_not_searched() -> None:
    with pytest.raises(FilterError, match="'tol:push'"):
        AuditFilter.parse("tol:push", NOW)


def test_live_events_are_admitted_as_the_server_would() -> None:
    parsed = AuditFilter.parse("kind:tool. server:git Hotfix", NOW)
    assert parsed.admits(_event(1, server="git", why="a hotfix"))
    assert not parsed.admits(_event(2, server="db", why="a hotfix"))
    assert not parsed.admits(_event(3, "key.created", server="git", why="a hotfix"))
    assert not parsed.admits(_event(4, server="git"))
    assert AuditFilter().admits(_event(5, "anything"))


def test_pages_go_back_by_seq_and_the_last_short_page_ends_it() -> None:
    log = AuditLog()
    assert {"limit": PAGE} == log.next_page()
    log.add_page([_event(seq) for seq in range(1000, 1000 - PAGE, -1)])  # type: ignore[misc]
    assert {"limit": PAGE, "before_seq": 1000 - PAGE + 1} == log.next_page()
    assert not log.exhausted
    log.add_page([_event(seq) for seq in range(3, 0, -1)])  # type: ignore[misc]
    assert log.exhausted
    assert not log.add_live(_event(2))  # known already
    assert log.add_live(_event(1001))
    assert (1001, PAGE + 4) == (log.newest, len(log))
