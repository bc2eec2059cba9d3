"""The server's tracker loops on a hub opened as the server opens it (SQLite): a due tracker
is polled in the background, and a stored webhook delivery is processed once kicked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.errors import NotFoundError
from hub.memory import InMemoryStorage
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import (
    DeliveryState,
    RemoteIssue,
    Tracker,
    TrackerKind,
    WebhookDelivery,
)
from server.bootstrap import open_hub
from server.db.stores.trackers import SqlTrackerStorage
from server.tracker_loops import trackers_running
from tests.integration.conftest import make_settings
from tests.integration.mcp.support import eventually
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def remote(number: str, title: str) -> RemoteIssue:
    return RemoteIssue(
        external_id=f"ext-{number}",
        number=number,
        title=title,
        state="open",
        created_at=T0,
        updated_at=T0,
    )


async def test_the_server_polls_due_trackers_and_processes_kicked_deliveries(
    tmp_path: Path,
) -> None:
    hub = await open_hub(make_settings(tmp_path))
    try:
        assert isinstance(hub.trackers, SqlTrackerStorage)  # in the server's database
        assert hub.tracker_inbox is not None
        scripted = ScriptedTracker()
        scripted.put("o/r", remote("1", "Polled"))
        hub.tracker_clients = scripted
        account = await hub.identity.default_account()
        now = datetime.now(UTC)
        tracker = Tracker(
            id="trk_1",
            account_id=account.id,
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url="https://api.github.com",
            token_ref="env:GH",
            projects=("o/r",),
            poll_seconds=3600,
            created_at=now,
            updated_at=now,
        )
        await hub.trackers.trackers.add(tracker)
        manual = Tracker(**{**_fields(tracker), "id": "trk_2", "name": "manual", "poll_seconds": 0})
        await hub.trackers.trackers.add(manual)
        trackers = hub.trackers

        async with trackers_running(hub, every=3600):  # the first rounds run at once
            polled = await eventually(
                lambda: trackers.issues.get_by_number(account.id, "trk_1", "o/r", "1")
            )
            assert "Polled" == polled.title
            assert 0 == await trackers.issues.count(account.id, "trk_2")  # never polled

            scripted.put("o/r", remote("1", "Edited on the tracker"))
            await trackers.inbox.add(
                WebhookDelivery(
                    id="whd_1",
                    account_id=account.id,
                    tracker_id="trk_1",
                    delivery_id="gh-delivery-1",
                    event="issues",
                    payload={
                        "action": "edited",
                        "issue": {"number": 1},
                        "repository": {"full_name": "o/r"},
                    },
                    received_at=datetime.now(UTC),
                )
            )
            hub.tracker_inbox.kick()  # what the webhook endpoint does (else: in an hour)

            async def processed() -> WebhookDelivery | None:
                row = await trackers.inbox.get(account.id, "whd_1")
                return row if row is not None and row.state is DeliveryState.DONE else None

            await eventually(processed)
        edited = await trackers.issues.get_by_number(account.id, "trk_1", "o/r", "1")
        assert edited is not None
        assert "Edited on the tracker" == edited.title
    finally:
        await hub.close()


def _fields(tracker: Tracker) -> dict[str, object]:
    return {name: getattr(tracker, name) for name in tracker.__struct_fields__}


async def test_beside_in_memory_storage_the_tracker_storage_is_in_memory_and_checks_accounts(
    tmp_path: Path,
) -> None:
    hub = await open_hub(make_settings(tmp_path), storage=InMemoryStorage())
    try:
        assert isinstance(hub.trackers, InMemoryTrackerStorage)
        now = datetime.now(UTC)
        orphan = Tracker(
            id="trk_1",
            account_id="acct_missing",
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url="https://api.github.com",
            token_ref="env:GH",
            created_at=now,
            updated_at=now,
        )
        with pytest.raises(NotFoundError):
            await hub.trackers.trackers.add(orphan)
    finally:
        await hub.close()
