"""Issues for the compliance tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hub.trackers.records import Issue

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def issue(title: str, body: str = "", labels: tuple[str, ...] = (), **extra: object) -> Issue:
    fields: dict[str, object] = {
        "id": "iss_1",
        "account_id": "acc",
        "tracker_id": "trk_gh",
        "project": "acme/app",
        "number": "1",
        "key": "acme/app#1",
        "external_id": "e1",
        "title": title,
        "body": body,
        "state": "open",
        "labels": labels,
        "url": "https://github.com/acme/app/issues/1",
        "created_at": T0,
        "updated_at": T0,
        "synced_at": T0,
    }
    return Issue(**(fields | extra))  # type: ignore[arg-type]
