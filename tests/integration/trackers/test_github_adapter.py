"""The GitHub adapter against the stateful fake over real HTTP: every port method, Link
pagination, ETag/304, each error's message, rate limits waited out, GitHub Enterprise."""

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
)
from server.trackers import HttpTrackerClients
from server.trackers.github import GitHubClient, api_root
from tests.integration.fakes.github import LOGIN, TOKEN, FakeGitHub
from tests.integration.fakes.tracker_base import parse_iso
from tests.integration.trackers.conftest import Waits

REF = "env:GITHUB_TOKEN"


def client(url: str, waits: Waits, **kwargs: object) -> GitHubClient:
    return GitHubClient(url, TOKEN, token_ref=REF, retry=waits.policy, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def seeded(github: tuple[FakeGitHub, str]) -> tuple[FakeGitHub, str]:
    fake, url = github
    fake.add_repo("acme/app", description="The app")
    fake.add_issue("acme/app", "First bug", "It breaks", labels=("bug",), assignees=("ann",))
    fake.add_issue("acme/app", "Second", state="closed")
    fake.add_pull("acme/app", "Fix the bug", "Fixes #1", head="fix", diff="diff --git a/x b/x\n")
    fake.add_issue("acme/app", "Fourth")
    fake.add_issue("acme/app", "Fifth")
    return fake, url


async def test_connection_describes_the_repository(seeded, waits):
    fake, url = seeded
    gh = client(url, waits)
    info = await gh.test_connection("acme/app")
    await gh.close()
    assert (info.project, info.name, info.description, info.default_branch) == (
        "acme/app",
        "app",
        "The app",
        "main",
    )
    sent = fake.requests[-1].headers
    assert sent["authorization"] == f"Bearer {TOKEN}"
    assert sent["x-github-api-version"] == "2022-11-28"
    assert sent["user-agent"].startswith("Preloop")


async def test_issues_since_follows_link_pages_oldest_first(seeded, waits):
    fake, url = seeded
    gh = client(url, waits, per_page=2)
    numbers, kinds, pages = [], {}, 0
    page = None
    while True:
        answer = await gh.issues_since("acme/app", None, page=page)
        pages += 1
        numbers += [i.number for i in answer.items]
        kinds.update({i.number: i.kind for i in answer.items})
        page = answer.next_page
        if page is None:
            break
    await gh.close()
    assert numbers == ["1", "2", "3", "4", "5"]
    assert pages == 3
    assert kinds["3"] is IssueKind.PULL_REQUEST
    assert kinds["1"] is IssueKind.ISSUE
    first = fake.requests_to("GET", "/repos/acme/app/issues")[0].query
    assert first == {"state": "all", "sort": "updated", "direction": "asc", "per_page": "2"}


async def test_issues_since_asks_from_the_cursor(seeded, waits):
    fake, url = seeded
    touched = fake.touch("acme/app", 2, title="Second, edited")
    gh = client(url, waits)
    answer = await gh.issues_since("acme/app", parse_iso(touched["updated_at"]))
    await gh.close()
    assert [(i.number, i.title, i.state) for i in answer.items] == [
        ("2", "Second, edited", "closed")
    ]
    assert fake.requests[-1].query["since"] == touched["updated_at"]


async def test_an_unchanged_first_page_is_not_modified(seeded, waits):
    fake, url = seeded
    gh = client(url, waits)
    first = await gh.issues_since("acme/app", None)
    again = await gh.issues_since("acme/app", None, etag=first.etag)
    fake.touch("acme/app", 1)
    changed = await gh.issues_since("acme/app", None, etag=first.etag)
    await gh.close()
    assert first.etag
    assert (again.not_modified, again.items) == (True, ())
    assert fake.requests[-2].headers["if-none-match"] == first.etag
    assert not changed.not_modified
    assert len(changed.items) == 5


async def test_get_issue_and_comments_of_an_issue_and_a_pull_request(seeded, waits):
    fake, url = seeded
    fake.add_comment("acme/app", 1, "Seen it too", author="bob")
    fake.add_comment("acme/app", 3, "Looks good")
    fake.add_review_comment("acme/app", 3, "Typo here", path="x", line=4)
    gh = client(url, waits)
    issue = await gh.get_issue("acme/app", "1")
    issue_comments = await gh.comments("acme/app", "1")
    pull_comments = await gh.comments("acme/app", "3")
    await gh.close()
    assert (issue.title, issue.body, issue.labels, issue.assignees, issue.author) == (
        "First bug",
        "It breaks",
        ("bug",),
        ("ann",),
        "octocat",
    )
    assert issue.external_id == str(fake.issue("acme/app", 1)["id"])
    assert issue.created_at.tzinfo is not None
    assert [(c.body, c.author, c.kind) for c in issue_comments] == [
        ("Seen it too", "bob", "issue_comment")
    ]
    assert [(c.body, c.kind, c.path, c.line) for c in pull_comments] == [
        ("Looks good", "issue_comment", None, None),
        ("Typo here", "review_comment", "x", 4),
    ]


async def test_create_and_update_an_issue(seeded, waits):
    fake, url = seeded
    gh = client(url, waits)
    created = await gh.create_issue(
        "acme/app",
        IssueDraft(
            title="New", description="Body", labels=("ops",), assignee="ann", status="closed"
        ),
    )
    updated = await gh.update_issue(
        "acme/app",
        "1",
        IssueChanges(title="Renamed", status="closed", labels=("bug", "p1"), assignee=""),
    )
    with pytest.raises(TrackerError) as bad:
        await gh.update_issue("acme/app", "1", IssueChanges(status="in progress"))
    before = len(fake.repos["acme/app"]["issues"])
    with pytest.raises(TrackerError):
        await gh.create_issue("acme/app", IssueDraft(title="x", status="in progress"))
    await gh.close()
    stored = fake.issue("acme/app", int(created.number))
    assert (stored["title"], stored["body"], stored["state"]) == ("New", "Body", "closed")
    assert [label["name"] for label in stored["labels"]] == ["ops"]
    assert created.state == "closed"
    assert (updated.title, updated.state, updated.labels, updated.assignees) == (
        "Renamed",
        "closed",
        ("bug", "p1"),
        (),
    )
    assert "open or closed" in bad.value.message
    assert len(fake.repos["acme/app"]["issues"]) == before  # refused before anything was made


async def test_comments_on_issues_diff_lines_and_replies(seeded, waits):
    fake, url = seeded
    gh = client(url, waits)
    plain = await gh.add_comment("acme/app", "1", "On the issue")
    line = await gh.add_comment("acme/app", "3", "On a line", path="x", line=2, side="RIGHT")
    reply = await gh.add_comment("acme/app", "3", "A reply", in_reply_to=line.external_id)
    edited = await gh.update_comment("acme/app", "1", plain.external_id, body="Edited")
    edited_review = await gh.update_comment(
        "acme/app", "3", line.external_id, body="Edited line", comment_type="review_comment"
    )
    unchanged = await gh.update_comment(
        "acme/app", "3", line.external_id, comment_type="review_comment"
    )
    with pytest.raises(TrackerError) as resolving:
        await gh.update_comment("acme/app", "3", line.external_id, resolved=True)
    await gh.close()
    assert (plain.kind, line.kind, line.path, line.line) == (
        "issue_comment",
        "review_comment",
        "x",
        2,
    )
    sent = fake.requests_to("POST", "/pulls/3/comments")[0].body
    assert sent["commit_id"] == fake.pull("acme/app", 3)["head"]["sha"]
    assert (reply.thread_id, reply.path) == (line.external_id, "x")
    assert (edited.body, edited_review.body) == ("Edited", "Edited line")
    assert unchanged.body == "Edited line"
    assert [c["body"] for c in fake.comments_of("acme/app", 1)] == ["Edited"]
    assert "resolve" in resolving.value.message


async def test_get_pull_request_with_diff_and_comments(seeded, waits):
    fake, url = seeded
    fake.add_comment("acme/app", 3, "Ship it")
    gh = client(url, waits)
    pr = await gh.get_pull_request("acme/app", "3")
    bare = await gh.get_pull_request("acme/app", "3", include_comments=False, include_diff=False)
    with pytest.raises(TrackerError) as not_a_pull:
        await gh.get_pull_request("acme/app", "1")
    await gh.close()
    assert pr.pull_request.kind is IssueKind.PULL_REQUEST
    assert pr.pull_request.external_id == str(fake.issue("acme/app", 3)["id"])
    assert (pr.pull_request.extra["source_branch"], pr.pull_request.extra["target_branch"]) == (
        "fix",
        "main",
    )
    assert pr.diff == "diff --git a/x b/x\n"
    assert [c.body for c in pr.comments] == ["Ship it"]
    assert (bare.diff, bare.comments) == (None, ())
    assert not_a_pull.value.status == 404
    assert "pull request #1" in not_a_pull.value.message


async def test_create_a_pull_request_with_labels_assignees_and_reviewers(seeded, waits):
    _fake, url = seeded
    gh = client(url, waits)
    created = await gh.create_pull_request(
        "acme/app",
        PullRequestDraft(
            title="Feature",
            source_branch="feat",
            target_branch="main",
            description="Adds it",
            draft=True,
            labels=("enh",),
            assignees=("ann",),
            reviewers=("bob",),
        ),
    )
    with pytest.raises(TrackerError) as duplicate:
        await gh.create_pull_request(
            "acme/app", PullRequestDraft(title="Again", source_branch="feat", target_branch="main")
        )
    await gh.close()
    assert created.kind is IssueKind.PULL_REQUEST
    assert (created.labels, created.assignees) == (("enh",), ("ann",))
    assert created.extra["reviewers"] == ["bob"]
    assert created.extra["draft"] is True
    assert duplicate.value.status == 422
    assert "A pull request already exists for feat" in duplicate.value.message
    assert "acme/app" in duplicate.value.message


async def test_update_a_pull_request_review_and_reactions(seeded, waits):
    fake, url = seeded
    gh = client(url, waits)
    updated = await gh.update_pull_request(
        "acme/app",
        "3",
        PullRequestChanges(
            title="Fix it",
            labels=("ready",),
            reviewers=("bob",),
            review_action="approve",
            review_body="LGTM",
            review_comments=(ReviewComment(path="x", line=1, body="nit"),),
            add_reaction="rocket",
        ),
    )
    assert [r["content"] for r in fake.reactions_of("acme/app", 3)] == ["rocket"]
    closed = await gh.update_pull_request(
        "acme/app", "3", PullRequestChanges(state="closed", remove_reaction="rocket")
    )
    with pytest.raises(TrackerError) as drafting:
        await gh.update_pull_request("acme/app", "3", PullRequestChanges(draft=True))
    with pytest.raises(TrackerError) as no_body:
        await gh.update_pull_request(
            "acme/app", "3", PullRequestChanges(review_action="request_changes")
        )
    await gh.close()
    assert (updated.title, updated.labels, updated.extra["reviewers"]) == (
        "Fix it",
        ("ready",),
        ["bob"],
    )
    review = fake.reviews_of("acme/app", 3)[0]
    assert (review["state"], review["body"], review["user"]["login"]) == ("APPROVED", "LGTM", LOGIN)
    assert [c["body"] for c in fake.review_comments_of("acme/app", 3)] == ["nit"]
    assert closed.state == "closed"
    assert fake.reactions_of("acme/app", 3) == []
    assert "draft" in drafting.value.message
    assert no_body.value.status == 422
    assert "without a body" in no_body.value.message


# --- errors -------------------------------------------------------------------------------
async def test_a_rejected_token_names_its_ref_never_the_token(seeded, waits):
    _fake, url = seeded
    gh = GitHubClient(url, "ghp_wrong_token_value", token_ref=REF, retry=waits.policy)
    with pytest.raises(TrackerError) as rejected:
        await gh.issues_since("acme/app", None)
    await gh.close()
    error = rejected.value
    assert error.status == 401
    assert (error.tracker, error.project) == ("github", "acme/app")
    assert "GitHub at 127.0.0.1" in error.message
    assert REF in error.message
    assert "acme/app" in error.message
    assert "Bad credentials" in error.message
    assert "ghp_wrong_token_value" not in error.message


async def test_a_missing_repository_or_issue_is_404_named(seeded, waits):
    _, url = seeded
    gh = client(url, waits)
    with pytest.raises(TrackerError) as repo:
        await gh.test_connection("acme/nope")
    with pytest.raises(TrackerError) as issue:
        await gh.get_issue("acme/app", "99")
    with pytest.raises(TrackerError) as invalid:
        await gh.create_issue("acme/app", IssueDraft(title=""))
    await gh.close()
    assert (repo.value.status, issue.value.status) == (404, 404)
    assert "acme/nope" in repo.value.message
    assert "issue #99" in issue.value.message
    assert "acme/app" in issue.value.message
    assert invalid.value.status == 422
    assert "Validation Failed" in invalid.value.message
    assert "title missing field" in invalid.value.message


async def test_a_429_is_retried_after_retry_after(seeded, waits):
    fake, url = seeded
    fake.limit(1, retry_after=2)
    gh = client(url, waits)
    info = await gh.test_connection("acme/app")
    await gh.close()
    assert info.project == "acme/app"
    assert waits.seen == [2.0]
    assert fake.rate_limited == 1
    assert len(fake.requests_to("GET", "/repos/acme/app")) == 2


async def test_githubs_403_rate_limits_are_waited_out(seeded, waits):
    fake, url = seeded
    fake.limit(1, retry_after=3, style="primary")
    gh = client(url, waits)
    await gh.test_connection("acme/app")
    fake.limit(1, retry_after=1, style="secondary")
    await gh.test_connection("acme/app")
    await gh.close()
    assert len(waits.seen) == 2
    assert 0 <= waits.seen[0] <= 3
    assert waits.seen[1] == 1.0
    assert fake.rate_limited == 2


async def test_a_rate_limit_beyond_the_cap_raises_with_retry_after(seeded):
    fake, url = seeded
    fake.limit(5, retry_after=120)
    waits = Waits(max_wait=5)
    gh = client(url, waits)
    with pytest.raises(TrackerError) as limited:
        await gh.issues_since("acme/app", None)
    fake.rate_limit = None
    fake.limit(5, retry_after=1)
    with pytest.raises(TrackerError) as exhausted:
        await gh.issues_since("acme/app", None)
    await gh.close()
    assert (limited.value.status, limited.value.retry_after) == (429, 120.0)
    assert waits.seen == [1.0, 1.0, 1.0]  # three retries, then the fourth refusal is raised
    assert "retry after 120 s" in limited.value.message
    assert "acme/app" in limited.value.message
    assert exhausted.value.retry_after == 1.0


async def test_an_unreachable_tracker_is_status_none(waits):
    gh = client("http://127.0.0.1:9", waits, timeout=2.0)
    with pytest.raises(TrackerError) as down:
        await gh.test_connection("acme/app")
    await gh.close()
    assert down.value.status is None
    assert "cannot be reached" in down.value.message
    assert "acme/app" in down.value.message


# --- base URLs and the factory ------------------------------------------------------------
async def test_github_enterprise_under_api_v3(github_enterprise, waits):
    fake, url = github_enterprise
    fake.add_repo("corp/tool")
    fake.add_issue("corp/tool", "Internal")
    gh = client(url, waits)
    info = await gh.test_connection("corp/tool")
    page = await gh.issues_since("corp/tool", datetime(2020, 1, 1, tzinfo=UTC))
    await gh.close()
    assert info.project == "corp/tool"
    assert [i.title for i in page.items] == ["Internal"]
    assert all(r.path.startswith("/api/v3/") for r in fake.requests)


def test_github_com_means_the_api_host():
    assert api_root("https://github.com/") == "https://api.github.com"
    assert api_root("https://ghe.corp.example/api/v3/") == "https://ghe.corp.example/api/v3"


async def test_http_tracker_clients_resolve_an_env_ref(seeded, waits):
    fake, url = seeded
    custody = Custody(
        {"env": EnvBackend({"GITHUB_TOKEN": TOKEN}, ["GITHUB_TOKEN"])},
        auditor=None,  # type: ignore[arg-type]
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tracker = Tracker(
        id="trk_1",
        account_id="acc_1",
        name="gh",
        kind=TrackerKind.GITHUB,
        base_url=url,
        token_ref=REF,
        created_at=now,
        updated_at=now,
    )
    clients = HttpTrackerClients(custody, retry=waits.policy)
    gh = await clients.client(tracker)
    info = await gh.test_connection("acme/app")
    await gh.close()
    missing = msgspec_replace(tracker, token_ref="env:OTHER_TOKEN")
    with pytest.raises(TrackerError) as unresolved:
        await clients.client(missing)
    assert gh.kind is TrackerKind.GITHUB
    assert info.name == "app"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
    assert "env:OTHER_TOKEN" in unresolved.value.message
    assert "gh" in unresolved.value.message


def msgspec_replace(tracker: Tracker, **changes: str) -> Tracker:
    import msgspec

    return msgspec.structs.replace(tracker, **changes)


async def test_a_token_without_the_permission_is_a_403_named(seeded, waits):
    fake, url = seeded
    fake.forbid("POST", "/repos/acme/app/issues")
    gh = client(url, waits)
    with pytest.raises(TrackerError) as refused:
        await gh.create_issue("acme/app", IssueDraft(title="x"))
    await gh.close()
    assert refused.value.status == 403
    assert waits.seen == []  # not a rate limit: not retried
    assert "refused permission for project acme/app" in refused.value.message
    assert "Resource not accessible by personal access token" in refused.value.message
    assert REF in refused.value.message
    assert TOKEN not in refused.value.message


async def test_the_hub_built_by_bootstrap_reaches_github_with_an_env_token(
    seeded, tmp_path, monkeypatch
):
    from hub.memory import InMemoryStorage
    from server.bootstrap import open_hub
    from tests.integration.conftest import make_settings

    fake, url = seeded
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    settings = make_settings(tmp_path, PRELOOP_SECRETS_ENV_ALLOW="GH_TOKEN")
    hub = await open_hub(settings, storage=InMemoryStorage())
    try:
        now = datetime(2026, 1, 1, tzinfo=UTC)
        tracker = Tracker(
            id="trk_9",
            account_id="acc_1",
            name="gh",
            kind=TrackerKind.GITHUB,
            base_url=url,
            token_ref="env:GH_TOKEN",
            created_at=now,
            updated_at=now,
        )
        assert hub.tracker_clients is not None
        gh = await hub.tracker_clients.client(tracker)
        info = await gh.test_connection("acme/app")
        await gh.close()
    finally:
        await hub.close()
    assert info.project == "acme/app"
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"
