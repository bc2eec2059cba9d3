"""The signed deliveries of tests/integration/fakes/webhooks.py pass the hub's verification
(two independent implementations of each scheme agree), a tampered body does not, and the
payload builders answer the trackers' shapes from the fakes' state."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from hub.errors import AuthenticationError
from hub.trackers.webhooks import verify
from tests.integration.fakes.github import FakeGitHub
from tests.integration.fakes.gitlab import FakeGitLab
from tests.integration.fakes.jira import FakeJira
from tests.integration.fakes.webhooks import (
    github_issue_comment,
    github_issues,
    github_pull_request,
    gitlab_issue_hook,
    gitlab_merge_request_hook,
    gitlab_note_hook,
    jira_comment_created,
    jira_issue_updated,
    signed_delivery,
)

SECRET = "webhook-secret-0123"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # every signed delivery is stamped then


def _github() -> FakeGitHub:
    fake = FakeGitHub()
    fake.add_repo("acme/app")
    fake.add_issue("acme/app", "Bug", labels=("bug",))
    fake.add_pull("acme/app", "Fix", head="fix")
    return fake


def test_github_deliveries_verify_and_carry_real_shapes():
    fake = _github()
    comment = fake.add_comment("acme/app", 1, "Me too")
    payloads = {
        "issues": github_issues(fake, "acme/app", 1, action="labeled"),
        "issue_comment": github_issue_comment(fake, "acme/app", 1, comment),
        "pull_request": github_pull_request(fake, "acme/app", 2, action="synchronize"),
    }
    for event, payload in payloads.items():
        headers, body = signed_delivery("github", payload, SECRET, event=event, delivery_id=event)
        delivery = verify("github", headers, body, SECRET, now=NOW)
        assert (delivery.delivery_id, delivery.event) == (event, event)
        with pytest.raises(AuthenticationError):
            verify("github", headers, body + b" ", SECRET, now=NOW)
    assert payloads["issues"]["issue"]["labels"][0]["name"] == "bug"
    assert payloads["issues"]["repository"]["full_name"] == "acme/app"
    assert payloads["issue_comment"]["comment"]["body"] == "Me too"
    assert "_number" not in payloads["issue_comment"]["comment"]
    pull = payloads["pull_request"]
    assert (pull["number"], pull["pull_request"]["head"]["ref"]) == (2, "fix")


def test_gitlab_deliveries_by_token_and_by_signature():
    fake = FakeGitLab()
    fake.add_project("acme/api")
    fake.add_issue("acme/api", "Crash", labels=("bug",), assignees=("ann",))
    fake.add_merge_request("acme/api", "Fix", source="fix")
    note = fake.add_note("acme/api", 1, "On the MR", mr=True)
    issue = gitlab_issue_hook(fake, "acme/api", 1, action="update")
    merge = gitlab_merge_request_hook(fake, "acme/api", 1, action="open")
    on_mr = gitlab_note_hook(fake, "acme/api", 1, note, mr=True)
    headers, body = signed_delivery("gitlab", issue, SECRET, delivery_id="d-1")
    assert verify("gitlab", headers, body, SECRET, now=NOW).event == "Issue Hook"
    headers, body = signed_delivery(
        "gitlab", merge, SIGNING_SECRET, scheme="signed", timestamp=int(NOW.timestamp())
    )
    delivery = verify("gitlab", headers, body, SIGNING_SECRET, now=NOW)
    assert delivery.event == "Merge Request Hook"
    headers, body = signed_delivery("gitlab", on_mr, SECRET)
    assert verify("gitlab", headers, body, SECRET, now=NOW).event == "Note Hook"
    with pytest.raises(AuthenticationError):
        verify("gitlab", headers, body, "another-secret", now=NOW)
    stale, stale_body = signed_delivery(
        "gitlab", merge, SIGNING_SECRET, scheme="signed", timestamp=int(NOW.timestamp()) - 3600
    )
    with pytest.raises(AuthenticationError):
        verify("gitlab", stale, stale_body, SIGNING_SECRET, now=NOW)
    assert issue["object_attributes"]["iid"] == 1
    assert issue["labels"] == [{"title": "bug"}]
    assert merge["object_attributes"]["source_branch"] == "fix"
    assert on_mr["object_attributes"]["noteable_type"] == "MergeRequest"
    assert on_mr["merge_request"]["iid"] == 1


def test_jira_deliveries_verify_and_name_their_event():
    fake = FakeJira()
    fake.add_project("OPS")
    fake.add_issue("OPS", "Disk full")
    comment = fake.add_comment("OPS-1", "Cleaning up")
    updated = jira_issue_updated(
        fake, "OPS-1", changes=[{"field": "status", "fromString": "To Do", "toString": "Done"}]
    )
    created = jira_comment_created(fake, "OPS-1", comment)
    for payload in (updated, created):
        headers, body = signed_delivery("jira", payload, SECRET)
        delivery = verify("jira", headers, body, SECRET, now=NOW)
        assert delivery.event == payload["webhookEvent"]
        assert delivery.delivery_id == headers["X-Atlassian-Webhook-Identifier"]
    assert json.loads(body)["comment"]["body"]["type"] == "doc"
    assert updated["issue"]["key"] == "OPS-1"
    assert updated["changelog"]["items"][0]["toString"] == "Done"
