"""The trackers' REST API: connecting trackers (admins only, never a token in an answer),
testing them, syncing with progress, the product description's project, search and issue
routes, and the public webhook endpoint (forged, replayed, oversized and garbage deliveries
change nothing). The tracker is the scripted one of the unit tests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from hub.records import Role
from hub.trackers.records import IssueDraft, RemoteIssue
from hub.trackers.service import TrackerService
from server.hub_services import Hub
from tests.integration.conftest import Api
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "ghp_NEVERSHOWNtoken0123456789abcdef"


class Tracking(ScriptedTracker):
    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        number = str(len(self.issues) + 1)
        issue = RemoteIssue(
            external_id=f"ext-{number}",
            number=number,
            title=draft.title,
            body=draft.description,
            state="open",
            labels=draft.labels,
            priority=draft.priority,
            created_at=T0,
            updated_at=T0,
        )
        self.put(project, issue)
        return issue


def scripted_hub(hub: Hub) -> Tracking:
    """The hub's tracker service talking to a scripted tracker."""
    scripted = Tracking()
    assert hub.trackers is not None
    hub.tracker_service = TrackerService(
        hub.trackers, scripted, hub.custody, hub.auditor, hub.clock
    )
    return scripted


GITHUB = {
    "name": "gh",
    "kind": "github",
    "base_url": "https://api.github.com",
    "token_ref": "env:GH_TOKEN",
    "projects": ["spacecode/astrobot"],
}


async def connect(api: Api, **changes: Any) -> dict[str, Any]:
    answer = await api.client.post(
        "/api/v1/trackers", json={**GITHUB, **changes}, headers=api.auth()
    )
    assert 201 == answer.status_code, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_admins_connect_trackers_viewers_read_them_and_no_answer_holds_a_token(
    api: Api,
) -> None:
    scripted_hub(api.hub)
    created = await connect(api)
    tracker, secret = created["tracker"], created["webhook_secret"]
    assert ("gh", "env:GH_TOKEN", "local:tracker-gh-webhook") == (
        tracker["name"],
        tracker["token_ref"],
        tracker["webhook_secret_ref"],
    )
    assert tracker["webhook_url"].endswith(f"/api/v1/webhooks/{tracker['id']}")
    assert secret
    viewer = api.auth(await api.key(Role.VIEWER))
    listed = await api.client.get("/api/v1/trackers", headers=viewer)
    shown = await api.client.get("/api/v1/trackers/gh", headers=viewer)
    assert [tracker] == listed.json()
    assert tracker == shown.json()
    assert secret not in listed.text + shown.text
    refused = await api.client.post(
        "/api/v1/trackers", json={**GITHUB, "name": "x"}, headers=viewer
    )
    assert 403 == refused.status_code
    assert 403 == (await api.client.delete("/api/v1/trackers/gh", headers=viewer)).status_code
    clash = await api.client.post("/api/v1/trackers", json=GITHUB, headers=api.auth())
    assert 409 == clash.status_code
    bad = await api.client.post(
        "/api/v1/trackers", json={**GITHUB, "name": "j", "kind": "jira"}, headers=api.auth()
    )
    assert 400 == bad.status_code
    assert bad.json()["error"]["message"].startswith("projects: invalid jira project")
    assert 204 == (await api.client.delete("/api/v1/trackers/gh", headers=api.auth())).status_code
    assert [] == (await api.client.get("/api/v1/trackers", headers=viewer)).json()
    account_id = (await api.hub.identity.default_account()).id
    kinds = [e.kind for e in await api.hub.storage.audit.all(account_id)]
    assert {"tracker.added", "tracker.removed"} <= set(kinds)


async def test_testing_a_tracker_and_the_product_descriptions_test_connection(api: Api) -> None:
    scripted_hub(api.hub)
    await connect(api)
    tested = await api.client.post("/api/v1/trackers/gh/test", headers=api.auth())
    assert 200 == tested.status_code
    [answer] = tested.json()
    assert (True, "spacecode/astrobot", "gh") == (
        answer["success"],
        answer["details"]["project"],
        answer["details"]["tracker"],
    )
    body = {"organization": "spacecode", "project": "astrobot"}
    agent = api.auth(await api.key(Role.AGENT))
    connection = await api.client.post("/api/v1/projects/test-connection", json=body, headers=agent)
    assert 200 == connection.status_code
    assert {"success", "message", "details"} == set(connection.json())
    assert connection.json()["success"] is True
    missing = await api.client.post(
        "/api/v1/projects/test-connection",
        json={"organization": "spacecode", "project": "other"},
        headers=agent,
    )
    assert 404 == missing.status_code
    assert "no connected tracker syncs" in missing.json()["error"]["message"]


async def test_issues_are_created_in_the_tracker_indexed_and_found_by_search(api: Api) -> None:
    scripted = scripted_hub(api.hub)
    await connect(api)
    body = {
        "organization": "spacecode",
        "project": "astrobot",
        "title": "Improve login error messages",
        "description": "Current error messages are not clear enough...",
        "labels": ["enhancement", "authentication"],
        "priority": "High",
    }
    viewer = api.auth(await api.key(Role.VIEWER))
    assert 403 == (await api.client.post("/api/v1/issues", json=body, headers=viewer)).status_code
    agent = api.auth(await api.key(Role.AGENT))
    created = await api.client.post("/api/v1/issues", json=body, headers=agent)
    assert 201 == created.status_code, created.text
    issue = created.json()
    assert ("spacecode/astrobot#1", "High", ["enhancement", "authentication"]) == (
        issue["key"],
        issue["priority"],
        issue["labels"],
    )
    assert ("spacecode/astrobot", "1") in scripted.issues
    params: dict[str, Any] = {
        "organization": "spacecode",
        "project": "astrobot",
        "query": "authentication problems login",
        "limit": 5,
    }
    found = await api.client.get("/api/v1/issues/search", params=params, headers=viewer)
    assert 200 == found.status_code
    assert ("fulltext", "fulltext", None, 1) == (
        found.json()["search_type"],
        found.json()["engine"],
        found.json()["model"],
        found.json()["count"],
    )
    assert [(issue["id"], 2.0)] == [(r["id"], r["score"]) for r in found.json()["results"]]
    narrowed = await api.client.get(
        "/api/v1/issues/search",
        params={**params, "labels": "enhancement,bug", "status": "open"},
        headers=viewer,
    )
    assert 0 == narrowed.json()["count"]
    for wrong in ({"limit": 0}, {"limit": 101}, {"search_type": "vector"}):
        answer = await api.client.get(
            "/api/v1/issues/search", params={**params, **wrong}, headers=viewer
        )
        assert 400 == answer.status_code, wrong


async def test_a_sync_streams_progress_then_its_report_and_status_shows_it(api: Api) -> None:
    scripted = scripted_hub(api.hub)
    for n in range(1, 6):
        scripted.put(
            "spacecode/astrobot",
            RemoteIssue(
                external_id=f"e{n}",
                number=str(n),
                title=f"Issue {n}",
                state="open",
                created_at=T0,
                updated_at=T0 + timedelta(minutes=n),
            ),
        )
    await connect(api)
    answer = await api.client.post("/api/v1/trackers/gh/sync?full=true", headers=api.auth())
    assert 200 == answer.status_code
    lines = [msgspec.json.decode(line) for line in answer.text.splitlines()]
    assert ["progress"] * 3 + ["report"] == [line["type"] for line in lines]
    assert [2, 4, 5] == [line["issues"] for line in lines[:3]]
    assert (5, True, []) == (
        lines[-1]["report"]["issues"],
        lines[-1]["report"]["full"],
        lines[-1]["report"]["errors"],
    )
    status = await api.client.get("/api/v1/sync/status", headers=api.auth())
    [tracker] = status.json()
    assert (5, "spacecode/astrobot", None) == (
        tracker["issues"],
        tracker["projects"][0]["project"],
        tracker["projects"][0]["last_error"],
    )
    missing = await api.client.post("/api/v1/trackers/nope/sync", headers=api.auth())
    assert 404 == missing.status_code


def _signed(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "issues",
        "Content-Type": "application/json",
    }


async def test_webhooks_store_verified_deliveries_once_and_refuse_the_rest(api: Api) -> None:
    scripted_hub(api.hub)
    created = await connect(api)
    secret, tracker_id = created["webhook_secret"], created["tracker"]["id"]
    url = f"/api/v1/webhooks/{tracker_id}"
    body = b'{"action": "opened", "issue": {"number": 7}}'
    accepted = await api.client.post(url, content=body, headers=_signed(secret, body, "d-1"))
    assert 202 == accepted.status_code, accepted.text
    assert ("d-1", "issues", "pending") == (
        accepted.json()["delivery_id"],
        accepted.json()["event"],
        accepted.json()["state"],
    )
    big = b'{"pad": "' + b"x" * 70_000 + b'"}'  # the fixture's body limit is 65536
    garbage = b"{not json"
    refused = [
        (409, body, _signed(secret, body, "d-1")),  # a replay
        (401, body, _signed("forged", body, "d-2")),
        (401, body, {"X-GitHub-Delivery": "d-3"}),  # unsigned
        (413, big, _signed(secret, big, "d-4")),
        (400, garbage, _signed(secret, garbage, "d-5")),
    ]
    for status, sent, headers in refused:
        answer = await api.client.post(url, content=sent, headers=headers)
        assert status == answer.status_code, (status, answer.text)
        assert "error" in answer.json()
    unknown = await api.client.post(
        "/api/v1/webhooks/trk_nope", content=body, headers=_signed(secret, body, "d-6")
    )
    assert 404 == unknown.status_code
    service = api.hub.tracker_service
    assert service is not None
    account_id = (await api.hub.identity.default_account()).id
    inbox = await service.storage.inbox.list(account_id, tracker_id)
    assert ["d-1"] == [d.delivery_id for d in inbox]


@pytest.mark.parametrize("route", ["/api/v1/trackers", "/api/v1/sync/status"])
async def test_the_routes_need_a_key(api: Api, route: str) -> None:
    assert 401 == (await api.client.get(route)).status_code


def _gitlab(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    return {
        "X-Gitlab-Token": secret,
        "X-Gitlab-Webhook-UUID": delivery,
        "X-Gitlab-Event": "Issue Hook",
    }


def _jira(secret: str, body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature": f"sha256={digest}", "X-Atlassian-Webhook-Identifier": delivery}


@pytest.mark.parametrize(
    ("kind", "project", "sign"),
    [("gitlab", "acme/platform/api", _gitlab), ("jira", "PROJ", _jira)],
)
async def test_gitlab_and_jira_deliveries_are_verified_their_own_way(
    api: Api, kind: str, project: str, sign: Any
) -> None:
    scripted_hub(api.hub)
    created = await connect(
        api, name=kind, kind=kind, base_url="https://tracker.example.com", projects=[project]
    )
    secret, tracker_id = created["webhook_secret"], created["tracker"]["id"]
    url = f"/api/v1/webhooks/{tracker_id}"
    body = b'{"webhookEvent": "jira:issue_updated", "object_kind": "issue"}'
    accepted = await api.client.post(url, content=body, headers=sign(secret, body, "k-1"))
    assert 202 == accepted.status_code, accepted.text
    for status, headers in [
        (409, sign(secret, body, "k-1")),
        (401, sign("forged", body, "k-2")),
        (401, _signed(secret, body, "k-3")),  # GitHub's scheme is not this tracker's
    ]:
        answer = await api.client.post(url, content=body, headers=headers)
        assert status == answer.status_code, (status, answer.text)
    service = api.hub.tracker_service
    assert service is not None
    account_id = (await api.hub.identity.default_account()).id
    inbox = await service.storage.inbox.list(account_id, tracker_id)
    assert ["k-1"] == [d.delivery_id for d in inbox]


async def test_a_sync_that_breaks_still_ends_its_stream_with_an_error(api: Api) -> None:
    scripted = scripted_hub(api.hub)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in an adapter")

    scripted.issues_since = broken  # type: ignore[method-assign]
    await connect(api)
    answer = await api.client.post("/api/v1/trackers/gh/sync", headers=api.auth())
    [line] = [msgspec.json.decode(text) for text in answer.text.splitlines()]
    assert ("error", "gh") == (line["type"], line["tracker"])
    assert "internal error" in line["message"]
    assert "a bug in an adapter" not in line["message"]
