"""The GitLab adapter against the stateful fake over real HTTP: every port method, issues and
merge requests in one page token, notes and discussions, approvals, each error's message, a
429 waited out, a self-managed GitLab under a path prefix."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub.errors import TrackerError
from hub.model_gateway.custody import Custody, EnvBackend
from hub.trackers.records import (
    IssueChanges,
    IssueDraft,
    IssueKind,
    PullRequestChanges,
    PullRequestDraft,
    ReviewComment,
    Tracker,
    TrackerKind,
    issue_key,
)
from server.trackers import HttpTrackerClients
from server.trackers.gitlab import GitLabClient, api_root
from tests.integration.fakes.gitlab import LOGIN, TOKEN, FakeGitLab
from tests.integration.fakes.tracker_base import parse_iso
from tests.integration.trackers.conftest import Waits

REF = "local:gitlab-token"
PROJECT = "acme/platform/api"


def client(url: str, waits: Waits, **kwargs: object) -> GitLabClient:
    return GitLabClient(url, TOKEN, token_ref=REF, retry=waits.policy, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def seeded(gitlab: tuple[FakeGitLab, str]) -> tuple[FakeGitLab, str]:
    fake, url = gitlab
    fake.add_user("ann")
    fake.add_user("bob")
    fake.add_project(PROJECT, description="The API")
    fake.add_issue(PROJECT, "Crash on start", "Stack trace", labels=("bug",), assignees=("ann",))
    fake.add_issue(PROJECT, "Docs", state="closed")
    fake.add_merge_request(PROJECT, "Fix the crash", "Closes #1", source="fix-crash")
    fake.add_issue(PROJECT, "Third")
    fake.add_merge_request(PROJECT, "Draft: refactor", source="refactor")
    return fake, url


async def test_connection_by_url_encoded_path(seeded, waits):
    fake, url = seeded
    gl = client(url, waits)
    info = await gl.test_connection(PROJECT)
    await gl.close()
    assert (info.project, info.name, info.description, info.default_branch) == (
        PROJECT,
        "api",
        "The API",
        "main",
    )
    request = fake.requests[-1]
    assert request.raw_path == "/api/v4/projects/acme%2Fplatform%2Fapi"
    assert request.headers["private-token"] == TOKEN
    assert request.headers["user-agent"].startswith("Preloop")


async def test_issues_then_merge_requests_page_by_page(seeded, waits):
    fake, url = seeded
    gl = client(url, waits, per_page=2)
    seen, tokens, page = [], [], None
    while True:
        answer = await gl.issues_since(PROJECT, None, page=page)
        seen += [(i.number, i.kind, i.state) for i in answer.items]
        page = answer.next_page
        tokens.append(page)
        if page is None:
            break
    await gl.close()
    assert seen == [
        ("1", IssueKind.ISSUE, "open"),
        ("2", IssueKind.ISSUE, "closed"),
        ("3", IssueKind.ISSUE, "open"),
        ("!1", IssueKind.PULL_REQUEST, "open"),
        ("!2", IssueKind.PULL_REQUEST, "open"),
    ]
    assert tokens == ["issues:2", "merge_requests:1", None]
    sent = fake.requests_to("GET", "/issues")[0].query
    assert sent == {
        "order_by": "updated_at",
        "sort": "asc",
        "per_page": "2",
        "page": "1",
        "state": "all",
    }


async def test_updated_after_and_merged_state(seeded, waits):
    fake, url = seeded
    merged = fake.merge(PROJECT, 1)
    gl = client(url, waits)
    first = await gl.issues_since(PROJECT, parse_iso(merged["updated_at"]))
    second = await gl.issues_since(PROJECT, parse_iso(merged["updated_at"]), page=first.next_page)
    await gl.close()
    assert first.items == ()
    assert [(i.number, i.state, i.extra["merged"]) for i in second.items] == [
        ("!1", "merged", True)
    ]
    assert fake.requests[-1].query["updated_after"] == merged["updated_at"]


async def test_get_issue_merge_request_and_their_notes(seeded, waits):
    fake, url = seeded
    fake.add_note(PROJECT, 1, "Me too", author="bob")
    fake.add_note(PROJECT, 1, "On the MR", mr=True)
    gl = client(url, waits)
    issue = await gl.get_issue(PROJECT, "1")
    mr = await gl.get_issue(PROJECT, "!1")
    issue_notes = await gl.comments(PROJECT, "1")
    mr_notes = await gl.comments(PROJECT, "!1")
    await gl.close()
    assert (issue.title, issue.body, issue.labels, issue.assignees, issue.author) == (
        "Crash on start",
        "Stack trace",
        ("bug",),
        ("ann",),
        "alice",
    )
    assert (mr.title, mr.kind, mr.extra["source_branch"]) == (
        "Fix the crash",
        IssueKind.PULL_REQUEST,
        "fix-crash",
    )
    assert [(c.body, c.author) for c in issue_notes] == [("Me too", "bob")]
    assert [c.body for c in mr_notes] == ["On the MR"]
    assert issue_key(TrackerKind.GITLAB, PROJECT, mr.number, mr.kind) == f"{PROJECT}!1"
    assert issue_key(TrackerKind.GITLAB, PROJECT, "1", IssueKind.PULL_REQUEST) == f"{PROJECT}!1"


async def test_create_and_update_issues(seeded, waits):
    fake, url = seeded
    gl = client(url, waits)
    created = await gl.create_issue(
        PROJECT,
        IssueDraft(title="New", description="Body", labels=("ops", "p1"), assignee="bob"),
    )
    closed = await gl.update_issue(
        PROJECT, created.number, IssueChanges(status="closed", labels=("ops",), assignee="")
    )
    reopened = await gl.update_issue(PROJECT, created.number, IssueChanges(status="open"))
    await gl.close()
    stored = fake.issue(PROJECT, int(created.number))
    assert (created.title, created.labels, created.assignees) == ("New", ("ops", "p1"), ("bob",))
    assert (closed.state, closed.labels, closed.assignees) == ("closed", ("ops",), ())
    assert reopened.state == "open"
    assert stored["state"] == "opened"
    assert fake.requests_to("POST", "/issues")[0].body["labels"] == "ops,p1"


async def test_notes_diff_discussions_replies_and_resolving(seeded, waits):
    fake, url = seeded
    gl = client(url, waits)
    plain = await gl.add_comment(PROJECT, "1", "A note")
    line = await gl.add_comment(PROJECT, "!1", "This line", path="README.md", line=1)
    reply = await gl.add_comment(PROJECT, "!1", "Agreed", in_reply_to=line.external_id)
    edited = await gl.update_comment(PROJECT, "1", plain.external_id, body="Edited note")
    resolved = await gl.update_comment(
        PROJECT, "!1", line.external_id, resolved=True, thread_id=line.thread_id
    )
    await gl.close()
    assert (plain.kind, line.kind, line.path, line.line) == (
        "issue_comment",
        "review_comment",
        "README.md",
        1,
    )
    position = fake.requests_to("POST", "/discussions")[0].body["position"]
    assert position["head_sha"] == fake.merge_request(PROJECT, 1)["diff_refs"]["head_sha"]
    assert reply.thread_id == line.thread_id
    assert edited.body == "Edited note"
    (discussion,) = [d for d in fake.discussions_of(PROJECT, 1) if not d["individual_note"]]
    assert [n["body"] for n in discussion["notes"]] == ["This line", "Agreed"]
    assert all(n["resolved"] for n in discussion["notes"])
    assert resolved.external_id == line.external_id


async def test_merge_request_with_diff_create_update_approve(seeded, waits):
    fake, url = seeded
    gl = client(url, waits)
    pr = await gl.get_pull_request(PROJECT, "1")
    created = await gl.create_pull_request(
        PROJECT,
        PullRequestDraft(
            title="Feature",
            source_branch="feat",
            target_branch="main",
            draft=True,
            labels=("enh",),
            assignees=("ann",),
            reviewers=("bob",),
            extra_options={"squash": True, "remove_source_branch": True, "ignored": 1},
        ),
    )
    ready = await gl.update_pull_request(
        PROJECT,
        created.number,
        PullRequestChanges(
            draft=False,
            review_action="approve",
            review_body="LGTM",
            review_comments=(ReviewComment(path="README.md", line=1, body="nit"),),
            add_reaction="+1",
        ),
    )
    unapproved = await gl.update_pull_request(
        PROJECT, created.number, PullRequestChanges(review_action="request_changes")
    )
    closed = await gl.update_pull_request(
        PROJECT, created.number, PullRequestChanges(state="closed", remove_reaction="+1")
    )
    with pytest.raises(TrackerError) as duplicate:
        await gl.create_pull_request(
            PROJECT,
            PullRequestDraft(title="Again", source_branch="fix-crash", target_branch="main"),
        )
    await gl.close()
    assert pr.pull_request.number == "!1"
    assert pr.diff.startswith("diff --git a/README.md b/README.md\n--- a/README.md\n")
    assert "+Fix the crash" in pr.diff
    iid = int(created.number.removeprefix("!"))
    stored = fake.merge_request(PROJECT, iid)
    assert created.title == "Draft: Feature"
    assert created.extra["draft"] is True
    assert (created.labels, created.assignees, created.extra["reviewers"]) == (
        ("enh",),
        ("ann",),
        ["bob"],
    )
    assert (stored["squash"], stored["remove_source_branch"]) == (True, True)
    assert "ignored" not in fake.requests_to("POST", "/merge_requests")[0].body
    assert (ready.title, ready.extra["draft"]) == ("Feature", False)
    assert [d["notes"][0]["body"] for d in fake.discussions_of(PROJECT, iid)] == ["nit", "LGTM"]
    assert unapproved.kind is IssueKind.PULL_REQUEST
    assert fake.approvals_of(PROJECT, iid) == []
    assert len(fake.requests_to("POST", "/approve")) == 1
    assert closed.state == "closed"
    assert fake.emoji_of(PROJECT, iid) == []
    assert fake.requests_to("POST", "/award_emoji")[0].body == {"name": "thumbsup"}
    assert duplicate.value.status == 409
    assert "Another open merge request already exists" in duplicate.value.message


# --- errors -------------------------------------------------------------------------------
async def test_errors_name_gitlab_the_project_and_the_token_ref(seeded, waits):
    _, url = seeded
    bad = GitLabClient(url, "glpat-wrong-value", token_ref=REF, retry=waits.policy)
    with pytest.raises(TrackerError) as rejected:
        await bad.test_connection(PROJECT)
    await bad.close()
    gl = client(url, waits)
    with pytest.raises(TrackerError) as missing_project:
        await gl.issues_since("acme/nope", None)
    with pytest.raises(TrackerError) as missing_issue:
        await gl.get_issue(PROJECT, "!42")
    with pytest.raises(TrackerError) as invalid:
        await gl.create_issue(PROJECT, IssueDraft(title=""))
    with pytest.raises(TrackerError) as unknown_user:
        await gl.create_issue(PROJECT, IssueDraft(title="x", assignee="nobody"))
    await gl.close()
    assert rejected.value.status == 401
    assert "GitLab at 127.0.0.1" in rejected.value.message
    assert REF in rejected.value.message
    assert PROJECT in rejected.value.message
    assert "glpat-wrong-value" not in rejected.value.message
    assert missing_project.value.status == 404
    assert "404 Project Not Found" in missing_project.value.message
    assert "found no project acme/nope" in missing_project.value.message
    assert "merge request !42" in missing_issue.value.message
    assert invalid.value.status == 400
    assert "title: can't be blank" in invalid.value.message
    assert "nobody" in unknown_user.value.message


async def test_an_older_gitlab_answers_the_diff_from_changes(seeded, waits):
    fake, url = seeded
    fake.legacy = True
    gl = client(url, waits)
    pr = await gl.get_pull_request(PROJECT, "!1", include_comments=False)
    await gl.close()
    assert "+Fix the crash" in pr.diff
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests[-2:]] == ["diffs", "changes"]


async def test_a_429_is_retried_after_retry_after(seeded, waits):
    fake, url = seeded
    fake.limit(2, retry_after=1)
    gl = client(url, waits)
    issue = await gl.get_issue(PROJECT, "1")
    await gl.close()
    assert issue.title == "Crash on start"
    assert waits.seen == [1.0, 1.0]
    assert fake.rate_limited == 2


async def test_a_self_managed_gitlab_under_a_path_prefix(gitlab_prefixed, waits):
    fake, url = gitlab_prefixed
    fake.add_project("team/app")
    fake.add_issue("team/app", "Prefixed")
    gl = client(url, waits)
    page = await gl.issues_since("team/app", datetime(2020, 1, 1, tzinfo=UTC))
    await gl.close()
    assert [i.title for i in page.items] == ["Prefixed"]
    assert all(r.raw_path.startswith("/gitlab/api/v4/projects/team%2Fapp") for r in fake.requests)
    assert api_root("https://git.example.com/gitlab/") == "https://git.example.com/gitlab/api/v4"
    assert api_root("https://git.example.com/api/v4") == "https://git.example.com/api/v4"


async def test_http_tracker_clients_build_a_gitlab_client(seeded, waits):
    fake, url = seeded
    custody = Custody(
        {"env": EnvBackend({"GL_TOKEN": TOKEN}, ["GL_TOKEN"])},
        auditor=None,  # type: ignore[arg-type]
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tracker = Tracker(
        id="trk_2",
        account_id="acc_1",
        name="gl",
        kind=TrackerKind.GITLAB,
        base_url=url,
        token_ref="env:GL_TOKEN",
        created_at=now,
        updated_at=now,
    )
    gl = await HttpTrackerClients(custody, retry=waits.policy).client(tracker)
    info = await gl.test_connection(PROJECT)
    await gl.close()
    assert gl.kind is TrackerKind.GITLAB
    assert info.project == PROJECT
    assert fake.requests[-1].headers["private-token"] == TOKEN
    assert LOGIN in fake.users


async def test_a_token_without_the_role_is_a_403_named(seeded, waits):
    fake, url = seeded
    fake.forbid("POST", "/approve")
    gl = client(url, waits)
    with pytest.raises(TrackerError) as refused:
        await gl.update_pull_request(PROJECT, "!1", PullRequestChanges(review_action="approve"))
    await gl.close()
    assert refused.value.status == 403
    assert "GitLab at 127.0.0.1" in refused.value.message
    assert f"refused permission for project {PROJECT}" in refused.value.message
    assert "403 Forbidden" in refused.value.message
    assert REF in refused.value.message
