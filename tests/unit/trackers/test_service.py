"""TrackerService: checked fields, audit by reference only, the webhook secret shown once,
tests per project, locating ``organization`` + ``project``, creating issues, the webhook inbox."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from hub.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    TrackerError,
    ValidationError,
)
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import IssueDraft, IssueQuery, RemoteIssue, Tracker, WebhookDelivery
from hub.trackers.service import TrackerService
from tests.unit.model_gateway.support import Stack, stack
from tests.unit.trackers.scripted_client import ScriptedTracker

T0 = datetime(2026, 12, 1, tzinfo=UTC)
TOKEN = "ghp_THEREALTOKENneverstored0123456789"


class Tracking(ScriptedTracker):
    """The scripted tracker, creating issues and refusing one project."""

    async def test_connection(self, project: str) -> Any:
        if project == "acme/locked":
            raise TrackerError(
                "github acme/locked: 404 Not Found (is the token allowed to read it?)",
                tracker="gh",
                project=project,
                status=404,
            )
        return await super().test_connection(project)

    async def create_issue(self, project: str, draft: IssueDraft) -> RemoteIssue:
        number = str(len(self.issues) + 1)
        now = T0
        issue = RemoteIssue(
            external_id=f"ext-{number}",
            number=number,
            title=draft.title,
            body=draft.description,
            state="open",
            labels=draft.labels,
            created_at=now,
            updated_at=now,
        )
        self.put(project, issue)
        return issue


async def service() -> tuple[TrackerService, Stack, Tracking]:
    s = await stack(environ={"GH_TOKEN": TOKEN}, allow="GH_TOKEN")
    scripted = Tracking()
    return (
        TrackerService(InMemoryTrackerStorage(), scripted, s.custody, s.auditor, s.clock),
        s,
        scripted,
    )


async def add(svc: TrackerService, s: Stack, **changes: Any) -> Tracker:
    fields: dict[str, Any] = {
        "name": "gh",
        "kind": "github",
        "base_url": "https://api.github.com/",
        "token_ref": "env:GH_TOKEN",
        "projects": ["spacecode/astrobot", "acme/locked"],
        "actor": "admin",
        **changes,
    }
    return (await svc.add(s.account_id, **fields)).tracker


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"name": "no spaces"}, "name:"),
        ({"kind": "bitbucket"}, "kind:"),
        ({"base_url": "ftp://example.com"}, "base_url:"),
        ({"base_url": "http://github.example.com"}, "base_url:"),
        ({"base_url": "https://user:pw@github.example.com"}, "base_url:"),
        ({"token_ref": "ghp_pasted_a_token"}, "token_ref:"),
        ({"token_ref": "local:ghp_pasted token"}, "token_ref:"),
        ({"webhook_secret_ref": "vault:nofield"}, "webhook_secret_ref:"),
        ({"projects": ["astrobot"]}, "projects:"),
        ({"kind": "jira", "projects": ["spacecode/astrobot"]}, "projects:"),
        ({"kind": "jira", "projects": ["proj"]}, "projects:"),
        ({"kind": "gitlab", "projects": ["justone"]}, "projects:"),
        ({"username": "me@example.com"}, "username:"),
        ({"poll_seconds": 5}, "poll_seconds:"),
    ],
)
async def test_every_field_is_checked_with_a_message_naming_it(
    changes: dict[str, Any], named: str
) -> None:
    svc, s, _ = await service()
    with pytest.raises(ValidationError) as caught:
        await add(svc, s, **changes)
    assert caught.value.message.startswith(named)
    assert "pasted" not in caught.value.message  # a token given as a reference is not echoed
    assert [] == list(await svc.list(s.account_id))


async def test_each_kind_takes_its_own_project_syntax_and_http_only_on_loopback() -> None:
    svc, s, _ = await service()
    lab = await add(
        svc, s, name="lab", kind="gitlab", base_url="http://127.0.0.1:9000",
        projects=["acme/platform/api"],
    )  # fmt: skip
    jira = await add(
        svc, s, name="jira", kind="jira", base_url="https://acme.atlassian.net",
        projects=["PROJ"], username="me@acme.com", poll_seconds=0,
    )  # fmt: skip
    assert ("acme/platform/api",) == lab.projects
    assert (("PROJ",), "me@acme.com", 0) == (jira.projects, jira.username, jira.poll_seconds)


async def test_a_webhook_secret_is_made_kept_in_custody_and_shown_once() -> None:
    svc, s, _ = await service()
    added = await svc.add(
        s.account_id,
        name="gh",
        kind="github",
        base_url="https://api.github.com",
        token_ref="env:GH_TOKEN",
        projects=["spacecode/astrobot"],
        actor="admin",
    )
    assert added.webhook_secret
    assert len(added.webhook_secret) >= 32
    assert "local:tracker-gh-webhook" == added.tracker.webhook_secret_ref
    assert added.webhook_secret == await s.custody.resolve(s.account_id, "local:tracker-gh-webhook")
    stored = await svc.get(s.account_id, "gh")
    assert added.webhook_secret not in msgspec.json.encode(stored).decode()
    named = await svc.add(
        s.account_id,
        name="gh2",
        kind="github",
        base_url="https://api.github.com",
        token_ref="env:GH_TOKEN",
        webhook_secret_ref="vault:preloop/github#webhook",
        actor="admin",
    )
    assert (None, "vault:preloop/github#webhook") == (
        named.webhook_secret,
        named.tracker.webhook_secret_ref,
    )


async def test_add_and_remove_are_audited_by_reference_and_never_hold_a_token() -> None:
    svc, s, _ = await service()
    added = await svc.add(
        s.account_id, name="gh", kind="github", base_url="https://api.github.com",
        token_ref="env:GH_TOKEN", projects=["spacecode/astrobot"], actor="admin",
    )  # fmt: skip
    with pytest.raises(ConflictError, match="name: a tracker named 'gh' exists"):
        await add(svc, s)
    await svc.remove(s.account_id, "gh", actor="admin")
    with pytest.raises(NotFoundError):
        await svc.get(s.account_id, "gh")
    with pytest.raises(NotFoundError):  # the secret made for it went with it
        await s.custody.resolve(s.account_id, "local:tracker-gh-webhook")
    kinds = await s.kinds()
    assert ["tracker.added", "tracker.removed"] == [k for k in kinds if k.startswith("tracker.")]
    audit = await s.audit_text()
    assert "env:GH_TOKEN" in audit
    assert TOKEN not in audit
    assert added.webhook_secret is not None
    assert added.webhook_secret not in audit


async def test_test_answers_per_project_what_the_tracker_says() -> None:
    svc, s, _ = await service()
    await add(svc, s)
    first, second = await svc.test(s.account_id, "gh")
    assert (True, "spacecode/astrobot") == (first.success, first.project)
    assert first.details is not None
    assert "spacecode/astrobot" == first.details.project
    assert not second.success
    assert "404 Not Found" in second.message
    assert second.details is None


async def test_organization_and_project_are_the_trackers_own_identifiers() -> None:
    svc, s, _ = await service()
    await add(svc, s)
    await add(
        svc, s, name="lab", kind="gitlab", base_url="https://gitlab.example.com",
        projects=["acme/platform/api"],
    )  # fmt: skip
    await add(
        svc, s, name="jira", kind="jira", base_url="https://acme.atlassian.net",
        projects=["PROJ"],
    )  # fmt: skip
    a = s.account_id
    assert ("gh", "spacecode/astrobot") == _where(await svc.locate(a, "SpaceCode", "astrobot"))
    assert ("gh", "spacecode/astrobot") == _where(await svc.locate(a, None, "spacecode/astrobot"))
    assert ("lab", "acme/platform/api") == _where(await svc.locate(a, "acme/platform", "api"))
    assert ("jira", "PROJ") == _where(await svc.locate(a, "acme.atlassian.net", "PROJ"))
    assert ("jira", "PROJ") == _where(await svc.locate(a, "acme", "proj"))
    for organization, project in [("other", "PROJ"), ("spacecode", "nope"), ("acme", "api")]:
        with pytest.raises(NotFoundError, match="no connected tracker syncs"):
            await svc.locate(a, organization, project)


def _where(located: Any) -> tuple[str, str]:
    return located.tracker.name, located.project


async def test_an_issue_is_created_in_the_tracker_then_indexed_and_audited() -> None:
    svc, s, scripted = await service()
    await add(svc, s)
    where = await svc.locate(s.account_id, "spacecode", "astrobot")
    draft = IssueDraft(title="Improve login error messages", labels=("enhancement",))
    issue = await svc.create_issue(s.account_id, where, draft, actor="key_1")
    assert ("spacecode/astrobot#1", "Improve login error messages") == (issue.key, issue.title)
    assert ("spacecode/astrobot", "1") in scripted.issues
    found = await svc.search(
        s.account_id, IssueQuery(text="login"), organization="spacecode", project="astrobot"
    )
    assert [issue.id] == [i.id for i in found]
    assert "tracker.issue_created" in await s.kinds()


def _signed(secret: str, body: bytes, delivery: str = "d-1") -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Event": "issues",
    }


async def test_a_verified_delivery_is_stored_once_and_wakes_the_processor() -> None:
    svc, s, _ = await service()
    added = await svc.add(
        s.account_id, name="gh", kind="github", base_url="https://api.github.com",
        token_ref="env:GH_TOKEN", actor="admin",
    )  # fmt: skip
    secret, tracker = added.webhook_secret, added.tracker
    assert secret is not None
    woken: list[WebhookDelivery] = []
    svc.on_delivery(woken.append)
    body = b'{"action": "opened", "issue": {"number": 1}}'
    stored = await svc.receive(tracker, _signed(secret, body), body)
    assert ("d-1", "issues", {"action": "opened", "issue": {"number": 1}}) == (
        stored.delivery_id,
        stored.event,
        stored.payload,
    )
    s.clock.advance(timedelta(minutes=1).total_seconds())
    refused: list[tuple[type[Exception], dict[str, str], bytes]] = [
        (ConflictError, _signed(secret, body), body),  # a replay
        (AuthenticationError, _signed("not-the-secret", body, "d-2"), body),  # forged
        (AuthenticationError, {"X-GitHub-Delivery": "d-3"}, body),  # unsigned
        (ValidationError, _signed(secret, b"{not json", "d-4"), b"{not json"),
        (ValidationError, _signed(secret, b"[1, 2]", "d-5"), b"[1, 2]"),
    ]
    for error, headers, sent in refused:
        with pytest.raises(error):
            await svc.receive(tracker, headers, sent)
    assert [stored] == list(await svc.storage.inbox.list(s.account_id, tracker.id))
    assert [stored] == woken


async def test_a_secret_gone_from_custody_refuses_deliveries_as_unverifiable() -> None:
    svc, s, _ = await service()
    added = await svc.add(
        s.account_id, name="gh", kind="github", base_url="https://api.github.com",
        token_ref="env:GH_TOKEN", actor="admin",
    )  # fmt: skip
    assert added.webhook_secret is not None
    await s.custody.delete(s.account_id, "local:tracker-gh-webhook", actor="admin")
    body = b"{}"
    with pytest.raises(AuthenticationError, match="cannot be read from custody"):
        await svc.receive(added.tracker, _signed(added.webhook_secret, body), body)
    assert [] == list(await svc.storage.inbox.list(s.account_id, added.tracker.id))
