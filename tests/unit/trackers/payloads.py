"""Webhook payloads in the trackers' published shapes, trimmed to the fields around the ones
read (GitHub: @octokit/webhooks-examples ``issues.opened``, ``issues.deleted``,
``issue_comment.created``, ``pull_request.opened``; GitLab: the "Webhook events" page's Issue,
Merge request and Comment events; Jira Cloud: the "Webhooks" page's ``jira:issue_updated``,
``comment_created`` and ``jira:issue_deleted``)."""

from __future__ import annotations

from typing import Any

_GITHUB_REPOSITORY = {
    "id": 186853002,
    "node_id": "MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=",
    "name": "Hello-World",
    "full_name": "Codertocat/Hello-World",
    "private": False,
    "owner": {"login": "Codertocat", "id": 21031067, "type": "User"},
    "html_url": "https://github.com/Codertocat/Hello-World",
    "default_branch": "master",
}
_GITHUB_SENDER = {"login": "Codertocat", "id": 21031067, "type": "User"}


def _github_issue(number: int = 1) -> dict[str, Any]:
    return {
        "url": f"https://api.github.com/repos/Codertocat/Hello-World/issues/{number}",
        "html_url": f"https://github.com/Codertocat/Hello-World/issues/{number}",
        "id": 444500041,
        "node_id": "MDU6SXNzdWU0NDQ1MDAwNDE=",
        "number": number,
        "title": "Spelling error in the README file",
        "user": {"login": "Codertocat", "id": 21031067},
        "labels": [{"id": 1362934389, "name": "bug", "color": "d73a4a"}],
        "state": "open",
        "assignees": [],
        "comments": 0,
        "created_at": "2019-05-15T15:20:18Z",
        "updated_at": "2019-05-15T15:20:18Z",
        "closed_at": None,
        "author_association": "OWNER",
        "body": "It looks like you accidently spelled 'commit' with two 't's.",
    }


def github_issues(action: str = "opened", number: int = 1) -> dict[str, Any]:
    return {
        "action": action,
        "issue": _github_issue(number),
        "repository": _GITHUB_REPOSITORY,
        "sender": _GITHUB_SENDER,
    }


def github_issue_comment(action: str = "created", number: int = 1) -> dict[str, Any]:
    return {
        "action": action,
        "issue": _github_issue(number),
        "comment": {
            "url": "https://api.github.com/repos/Codertocat/Hello-World/issues/comments/492700400",
            "id": 492700400,
            "user": {"login": "Codertocat", "id": 21031067},
            "created_at": "2019-05-15T15:20:21Z",
            "updated_at": "2019-05-15T15:20:21Z",
            "body": "You are totally right! I'll get this fixed right away.",
        },
        "repository": _GITHUB_REPOSITORY,
        "sender": _GITHUB_SENDER,
    }


def github_pull_request(action: str = "opened", number: int = 2) -> dict[str, Any]:
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "url": f"https://api.github.com/repos/Codertocat/Hello-World/pulls/{number}",
            "id": 279147437,
            "number": number,
            "state": "open",
            "title": "Update the README with new information.",
            "body": "This is a pretty simple change that we need to pull into master.",
            "head": {"ref": "changes", "sha": "ec26c3e57ca3a959ca5aad62de7213c562f8c821"},
            "base": {"ref": "master", "sha": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"},
            "draft": False,
            "merged": False,
        },
        "repository": _GITHUB_REPOSITORY,
        "sender": _GITHUB_SENDER,
    }


GITHUB_PING = {
    "zen": "Anything added dilutes everything else.",
    "hook_id": 109948940,
    "hook": {"type": "Repository", "id": 109948940, "events": ["issues"], "active": True},
    "repository": _GITHUB_REPOSITORY,
    "sender": _GITHUB_SENDER,
}

_GITLAB_PROJECT = {
    "id": 1,
    "name": "Gitlab Test",
    "web_url": "http://example.com/gitlabhq/gitlab-test",
    "namespace": "GitlabHQ",
    "path_with_namespace": "gitlabhq/gitlab-test",
    "default_branch": "master",
}
_GITLAB_USER = {"id": 1, "name": "Administrator", "username": "root"}


def gitlab_issue(iid: int = 23) -> dict[str, Any]:
    return {
        "object_kind": "issue",
        "event_type": "issue",
        "user": _GITLAB_USER,
        "project": _GITLAB_PROJECT,
        "object_attributes": {
            "id": 301,
            "iid": iid,
            "title": "New API: create/update/delete file",
            "description": "Create new API for manipulations with repository",
            "state": "opened",
            "action": "open",
            "created_at": "2013-12-03T17:15:43Z",
            "updated_at": "2013-12-03T17:15:43Z",
            "url": f"http://example.com/diaspora/issues/{iid}",
        },
        "labels": [{"id": 206, "title": "API"}],
    }


def gitlab_merge_request(iid: int = 1) -> dict[str, Any]:
    return {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": _GITLAB_USER,
        "project": _GITLAB_PROJECT,
        "object_attributes": {
            "id": 99,
            "iid": iid,
            "target_branch": "master",
            "source_branch": "ms-viewport",
            "title": "MS-Viewport",
            "state": "opened",
            "action": "open",
            "url": f"http://example.com/diaspora/merge_requests/{iid}",
        },
    }


def gitlab_note_on_merge_request(iid: int = 1) -> dict[str, Any]:
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": _GITLAB_USER,
        "project_id": 5,
        "project": _GITLAB_PROJECT,
        "object_attributes": {
            "id": 1244,
            "note": "This MR needs work.",
            "noteable_type": "MergeRequest",
            "noteable_id": 7,
            "url": f"http://example.com/gitlab-org/gitlab-test/merge_requests/{iid}#note_1244",
        },
        "merge_request": {"id": 7, "iid": iid, "title": "Tempora et eos debitis quae laborum"},
    }


def gitlab_note_on_issue(iid: int = 17) -> dict[str, Any]:
    return {
        "object_kind": "note",
        "event_type": "note",
        "user": _GITLAB_USER,
        "project": _GITLAB_PROJECT,
        "object_attributes": {"id": 1241, "note": "Hello world", "noteable_type": "Issue"},
        "issue": {"id": 92, "iid": iid, "title": "test", "state": "closed"},
    }


def gitlab_note_on_commit() -> dict[str, Any]:
    return {
        "object_kind": "note",
        "project": _GITLAB_PROJECT,
        "object_attributes": {
            "id": 1243,
            "note": "This is a commit comment.",
            "noteable_type": "Commit",
        },
        "commit": {"id": "cfe32cf61b73a0d5e9f13e774abde7ff789b1660"},
    }


def jira_issue(event: str = "jira:issue_updated", key: str = "TEST-42") -> dict[str, Any]:
    return {
        "timestamp": 1525698237764,
        "webhookEvent": event,
        "issue_event_type_name": "issue_updated",
        "user": {"accountId": "5b10a2844c20165700ede21g", "displayName": "Ada"},
        "issue": {
            "id": "10010",
            "self": "https://example.atlassian.net/rest/api/3/issue/10010",
            "key": key,
            "fields": {
                "summary": "A summary",
                "status": {"name": "In Progress"},
                "project": {"id": "10000", "key": key.split("-")[0], "name": "Test"},
            },
        },
        "changelog": {"id": "10100", "items": [{"field": "status", "toString": "In Progress"}]},
    }


def jira_comment_created(key: str = "TEST-42") -> dict[str, Any]:
    return {
        "timestamp": 1525698237764,
        "webhookEvent": "comment_created",
        "comment": {"id": "10100", "body": "A comment", "author": {"displayName": "Ada"}},
        "issue": {"id": "10010", "key": key, "fields": {"summary": "A summary"}},
    }
