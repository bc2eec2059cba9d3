"""Webhook deliveries as GitHub, GitLab and Jira send them: signed by each tracker's real
scheme (computed here from the schemes' documentation, independently of
hub/trackers/webhooks.py, so a test of the endpoint checks one against the other), with payloads
in the trackers' real shapes built from a fake's issue.

    signed_delivery("github", payload, secret, event="issues")
        X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body> (and the legacy SHA-1
        X-Hub-Signature), X-GitHub-Delivery (a UUID), X-GitHub-Event, X-GitHub-Hook-ID
    signed_delivery("gitlab", payload, secret)                      (scheme="token")
        X-Gitlab-Token: <secret>, X-Gitlab-Event ("Issue Hook", ...), X-Gitlab-Webhook-UUID,
        X-Gitlab-Event-UUID, X-Gitlab-Instance
    signed_delivery("gitlab", payload, secret, scheme="signed")     (Standard Webhooks)
        webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of
        "{id}.{timestamp}.{body}"> (a ``whsec_`` secret's key is the base64 after the prefix),
        plus GitLab's own X-Gitlab-* headers
    signed_delivery("jira", payload, secret)
        X-Hub-Signature: sha256=<hex HMAC-SHA256 of the body>,
        X-Atlassian-Webhook-Identifier

Payload builders: ``github_issues``, ``github_issue_comment``, ``github_pull_request``
(``FakeGitHub``); ``gitlab_issue_hook``, ``gitlab_note_hook``, ``gitlab_merge_request_hook``
(``FakeGitLab``); ``jira_issue_updated``, ``jira_comment_created`` (``FakeJira``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

from tests.integration.fakes.github import FakeGitHub
from tests.integration.fakes.gitlab import FakeGitLab
from tests.integration.fakes.jira import FakeJira

GITLAB_EVENTS = {
    "issue": "Issue Hook",
    "note": "Note Hook",
    "merge_request": "Merge Request Hook",
    "push": "Push Hook",
}


def signed_delivery(
    kind: str,
    payload: dict[str, Any],
    secret: str,
    *,
    event: str | None = None,
    delivery_id: str | None = None,
    scheme: str = "token",
    timestamp: int | None = None,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of one delivery of ``payload``, signed with ``secret`` the way the
    tracker ``kind`` signs it. ``event``: GitHub's ``X-GitHub-Event`` (default ``issues``) or
    GitLab's ``X-Gitlab-Event`` (default from the payload's ``object_kind``); Jira's event is
    the payload's ``webhookEvent``. ``timestamp``: the Standard Webhooks time (default now)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    delivery = delivery_id or str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if kind == "github":
        headers |= {
            "User-Agent": "GitHub-Hookshot/2f5c8a1",
            "X-GitHub-Event": event or "issues",
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-ID": "4242",
            "X-Hub-Signature-256": "sha256=" + _hex(secret, body, hashlib.sha256),
            "X-Hub-Signature": "sha1=" + _hex(secret, body, hashlib.sha1),
        }
        return headers, body
    if kind == "gitlab":
        headers |= {
            "User-Agent": "GitLab/18.6.0",
            "X-Gitlab-Event": event or GITLAB_EVENTS.get(str(payload.get("object_kind")), ""),
            "X-Gitlab-Webhook-UUID": delivery,
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "X-Gitlab-Instance": "https://gitlab.example.com",
        }
        if scheme == "token":
            headers["X-Gitlab-Token"] = secret
        elif scheme == "signed":
            stamp = str(timestamp if timestamp is not None else int(time.time()))
            key = (
                base64.b64decode(secret.removeprefix("whsec_"))
                if secret.startswith("whsec_")
                else secret.encode()
            )
            signed = f"{delivery}.{stamp}.".encode() + body
            digest = hmac.new(key, signed, hashlib.sha256).digest()
            headers |= {
                "webhook-id": delivery,
                "webhook-timestamp": stamp,
                "webhook-signature": "v1," + base64.b64encode(digest).decode(),
            }
        else:
            raise ValueError(f"unknown GitLab scheme {scheme!r}: token or signed")
        return headers, body
    if kind == "jira":
        headers |= {
            "User-Agent": "Atlassian Webhook HTTP Client",
            "X-Atlassian-Webhook-Identifier": delivery,
            "X-Hub-Signature": "sha256=" + _hex(secret, body, hashlib.sha256),
        }
        return headers, body
    raise ValueError(f"unknown tracker kind {kind!r}")


def _hex(secret: str, body: bytes, digest: Any) -> str:
    return hmac.new(secret.encode(), body, digest).hexdigest()


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


# --- GitHub -------------------------------------------------------------------------------
def _github_repo(fake: FakeGitHub, repo: str) -> dict[str, Any]:
    return dict(fake.repos[repo]["repo"])


def _github_sender(login: str) -> dict[str, Any]:
    return {"login": login, "id": sum(login.encode()), "type": "User"}


def github_issues(
    fake: FakeGitHub, repo: str, number: int, *, action: str = "opened", sender: str = "octocat"
) -> dict[str, Any]:
    """An ``issues`` event (``X-GitHub-Event: issues``): opened, edited, closed, labeled, ..."""
    return {
        "action": action,
        "issue": _clean(fake.issue(repo, number)),
        "repository": _github_repo(fake, repo),
        "sender": _github_sender(sender),
    }


def github_issue_comment(
    fake: FakeGitHub,
    repo: str,
    number: int,
    comment: dict[str, Any],
    *,
    action: str = "created",
    sender: str = "octocat",
) -> dict[str, Any]:
    """An ``issue_comment`` event (on an issue, or a pull request's conversation)."""
    return {
        "action": action,
        "issue": _clean(fake.issue(repo, number)),
        "comment": _clean(comment),
        "repository": _github_repo(fake, repo),
        "sender": _github_sender(sender),
    }


def github_pull_request(
    fake: FakeGitHub, repo: str, number: int, *, action: str = "opened", sender: str = "octocat"
) -> dict[str, Any]:
    """A ``pull_request`` event: opened, edited, closed, synchronize, ..."""
    data = fake.repos[repo]
    pull = fake._pull_json(repo, data, number)
    return {
        "action": action,
        "number": number,
        "pull_request": pull,
        "repository": _github_repo(fake, repo),
        "sender": _github_sender(sender),
    }


# --- GitLab -------------------------------------------------------------------------------
def _gitlab_project(fake: FakeGitLab, path: str) -> dict[str, Any]:
    project = fake.projects[path]["project"]
    return {
        "id": project["id"],
        "name": project["name"],
        "path_with_namespace": path,
        "web_url": project["web_url"],
        "default_branch": project["default_branch"],
    }


def _gitlab_user(fake: FakeGitLab, username: str) -> dict[str, Any]:
    user = fake.users.get(username) or {"id": 1, "username": username, "name": username}
    return {"id": user["id"], "name": user["name"], "username": username}


def _gitlab_attributes(row: dict[str, Any], action: str) -> dict[str, Any]:
    return {
        "id": row["id"],
        "iid": row["iid"],
        "project_id": row["project_id"],
        "title": row["title"],
        "description": row["description"],
        "state": row["state"],
        "action": action,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "url": row["web_url"],
        "labels": [{"title": name} for name in row["labels"]],
        "assignee_ids": [a["id"] for a in row["assignees"]],
    }


def gitlab_issue_hook(
    fake: FakeGitLab, path: str, iid: int, *, action: str = "open", user: str = "alice"
) -> dict[str, Any]:
    """An ``Issue Hook`` (``object_kind: issue``): open, update, close, reopen."""
    row = fake.issue(path, iid)
    return {
        "object_kind": "issue",
        "event_type": "issue",
        "user": _gitlab_user(fake, user),
        "project": _gitlab_project(fake, path),
        "object_attributes": _gitlab_attributes(row, action),
        "labels": [{"title": name} for name in row["labels"]],
        "assignees": [_gitlab_user(fake, a["username"]) for a in row["assignees"]],
    }


def gitlab_merge_request_hook(
    fake: FakeGitLab, path: str, iid: int, *, action: str = "open", user: str = "alice"
) -> dict[str, Any]:
    """A ``Merge Request Hook`` (``object_kind: merge_request``): open, update, merge, ..."""
    row = fake.merge_request(path, iid)
    attributes = _gitlab_attributes(row, action) | {
        "source_branch": row["source_branch"],
        "target_branch": row["target_branch"],
        "draft": row["draft"],
        "merge_status": "can_be_merged",
        "last_commit": {"id": row["sha"]},
    }
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": _gitlab_user(fake, user),
        "project": _gitlab_project(fake, path),
        "object_attributes": attributes,
        "labels": [{"title": name} for name in row["labels"]],
        "reviewers": [_gitlab_user(fake, r["username"]) for r in row.get("reviewers", [])],
    }


def gitlab_note_hook(
    fake: FakeGitLab, path: str, iid: int, note: dict[str, Any], *, mr: bool = False
) -> dict[str, Any]:
    """A ``Note Hook`` (``object_kind: note``) of a comment on an issue or merge request."""
    row = fake.merge_request(path, iid) if mr else fake.issue(path, iid)
    part = "merge_requests" if mr else "issues"
    payload = {
        "object_kind": "note",
        "event_type": "note",
        "user": _gitlab_user(fake, note["author"]["username"]),
        "project": _gitlab_project(fake, path),
        "object_attributes": {
            "id": note["id"],
            "note": note["body"],
            "noteable_type": "MergeRequest" if mr else "Issue",
            "noteable_id": row["id"],
            "type": note.get("type"),
            "created_at": note["created_at"],
            "updated_at": note["updated_at"],
            "url": f"{row['web_url']}#note_{note['id']}",
            "action": "create",
        },
    }
    payload["merge_request" if mr else "issue"] = {
        k: v for k, v in row.items() if not k.startswith("_") and k not in ("assignees", "author")
    } | {"url": f"https://gitlab.example.com/{path}/-/{part}/{iid}"}
    return payload


# --- Jira ---------------------------------------------------------------------------------
def _jira_issue(fake: FakeJira, key: str) -> dict[str, Any]:
    return _clean(fake.issues[key])


def jira_issue_updated(
    fake: FakeJira, key: str, *, changes: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    """A ``jira:issue_updated`` event with its ``changelog``."""
    return {
        "timestamp": int(fake.now.timestamp() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_updated",
        "user": dict(fake.bot),
        "issue": _jira_issue(fake, key),
        "changelog": {"id": "10100", "items": list(changes or [])},
    }


def jira_comment_created(fake: FakeJira, key: str, comment: dict[str, Any]) -> dict[str, Any]:
    """A ``comment_created`` event."""
    issue = _jira_issue(fake, key)
    return {
        "timestamp": int(fake.now.timestamp() * 1000),
        "webhookEvent": "comment_created",
        "comment": dict(comment),
        "issue": {
            "id": issue["id"],
            "key": issue["key"],
            "self": issue["self"],
            "fields": {
                k: issue["fields"][k] for k in ("summary", "status", "project", "issuetype")
            },
        },
    }
