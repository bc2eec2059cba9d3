from datetime import UTC, datetime, timedelta

import msgspec

from hub.audit_chain import GENESIS_HASH, chain, verify_chain
from hub.records import AuditDraft, AuditEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _events(n: int) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    prev = GENESIS_HASH
    for i in range(1, n + 1):
        draft = AuditDraft(
            account_id="a",
            kind="tool.call",
            actor="k",
            at=T0 + timedelta(i),
            data={"i": i, "nested": {"x": [1, 2]}},
        )
        event = chain(draft, seq=i, prev_hash=prev)
        events.append(event)
        prev = event.hash
    return events


def test_intact_chain_verifies() -> None:
    events = _events(5)
    report = verify_chain(events, head=(5, events[-1].hash))
    assert report.ok
    assert report.events == 5


def test_edited_event_is_named() -> None:
    events = _events(5)
    events[2] = msgspec.structs.replace(events[2], data={"i": 999})
    report = verify_chain(events, head=(5, events[-1].hash))
    assert not report.ok
    assert report.problems == ("event 3: content does not match its hash; it was edited",)


def test_deleted_middle_event_is_named() -> None:
    events = _events(5)
    del events[1]
    report = verify_chain(events, head=(5, events[-1].hash))
    assert not report.ok
    assert any("event 2: missing" in p for p in report.problems)


def test_deleted_last_event_is_caught_by_the_head() -> None:
    events = _events(5)
    head = (5, events[-1].hash)
    report = verify_chain(events[:-1], head=head)
    assert not report.ok
    assert any("newest rows were deleted" in p for p in report.problems)


def test_empty_chain_is_ok_without_head() -> None:
    assert verify_chain([], head=None).ok
    assert not verify_chain(_events(1), head=None).ok
