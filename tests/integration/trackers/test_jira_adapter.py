"""The Jira adapter against the stateful fake over real HTTP: every port method,
``/search/jql`` with ``nextPageToken`` (never the removed ``/search``), JQL times in the user's
time zone, ADF both ways, transitions, each error's message, a 429 waited out."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from hub.errors import TrackerError
from hub.model_gateway.custody import Custody, EnvBackend
from hub.trackers.records import (
    IssueChanges,
    IssueDraft,
    PullRequestChanges,
    PullRequestDraft,
    Tracker,
    TrackerKind,
)
from server.trackers import HttpTrackerClients
from server.trackers.adf import to_adf, to_text
from server.trackers.jira import JiraClient, api_root
from tests.integration.fakes.jira import BOT_ACCOUNT, EMAIL, TOKEN, FakeJira
from tests.integration.fakes.jira import adf as fake_adf
from tests.integration.trackers.conftest import Waits

REF = "vault:jira#token"


def client(url: str, waits: Waits, **kwargs: object) -> JiraClient:
    return JiraClient(url, TOKEN, token_ref=REF, username=EMAIL, retry=waits.policy, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def seeded(jira: tuple[FakeJira, str]) -> tuple[FakeJira, str]:
    fake, url = jira
    fake.add_user("Ann Lee", "ann@example.com", account_id="acc-ann")
    fake.add_project("OPS", "Operations", "Keeping the lights on")
    fake.add_issue("OPS", "Disk full", "The disk is full.\n\nSee the graph.", labels=("infra",))
    fake.add_issue("OPS", "Rotate keys", assignee="acc-ann", priority="High")
    fake.add_issue("OPS", "Third", status="Done")
    fake.add_issue("OPS", "Fourth")
    fake.add_issue("OPS", "Fifth")
    return fake, url


async def test_connection_with_basic_auth(seeded, waits):
    fake, url = seeded
    jira = client(url, waits)
    info = await jira.test_connection("OPS")
    await jira.close()
    assert (info.project, info.name, info.description) == (
        "OPS",
        "Operations",
        "Keeping the lights on",
    )
    assert info.url == f"{url}/browse/OPS"
    basic = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    assert fake.requests[-1].headers["authorization"] == f"Basic {basic}"


async def test_a_token_without_username_is_a_bearer_token(seeded, waits):
    fake, url = seeded
    jira = JiraClient(url, TOKEN, token_ref=REF, retry=waits.policy)
    await jira.test_connection("OPS")
    await jira.close()
    assert fake.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


async def test_search_jql_pages_with_next_page_token(seeded, waits):
    fake, url = seeded
    jira = client(url, waits, per_page=2)
    keys, tokens, page = [], [], None
    while True:
        answer = await jira.issues_since("OPS", None, page=page)
        keys += [i.number for i in answer.items]
        page = answer.next_page
        tokens.append(page)
        if page is None:
            break
    await jira.close()
    assert keys == ["OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5"]
    assert len(tokens) == 3
    searches = fake.requests_to("POST", "/rest/api/3/search/jql")
    assert searches[0].body["jql"] == 'project = "OPS" ORDER BY updated ASC'
    assert searches[0].body["maxResults"] == 2
    assert "summary" in searches[0].body["fields"]
    assert "nextPageToken" not in searches[0].body
    assert searches[1].body["nextPageToken"] == tokens[0]
    assert fake.requests_to("POST", "/rest/api/3/search") == []
    assert fake.requests_to("GET", "/rest/api/3/search") == []


async def test_updated_since_is_asked_in_the_users_time_zone(seeded, waits):
    fake, url = seeded
    fake.now += timedelta(minutes=10)
    touched = fake.touch("OPS-2", summary="Rotate the keys")
    since = datetime.strptime(touched["fields"]["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
    jira = client(url, waits)
    answer = await jira.issues_since("OPS", since)
    await jira.close()
    assert [(i.number, i.title) for i in answer.items] == [("OPS-2", "Rotate the keys")]
    # 09:10 UTC is 11:10 in Athens in January; minutes only, floored
    athens = since.astimezone(UTC) + timedelta(hours=2)
    assert fake.requests[-1].body["jql"] == (
        f'project = "OPS" AND updated >= "{athens:%Y/%m/%d %H:%M}" ORDER BY updated ASC'
    )
    assert len(fake.requests_to("GET", "/myself")) == 1


async def test_get_issue_and_comments_in_plain_text(seeded, waits):
    fake, url = seeded
    fake.add_comment("OPS-1", "First line\nsecond line", author="acc-ann")
    jira = client(url, waits)
    issue = await jira.get_issue("OPS", "OPS-1")
    by_number = await jira.get_issue("OPS", "2")
    comments = await jira.comments("OPS", "OPS-1")
    await jira.close()
    assert (issue.title, issue.body, issue.state, issue.labels, issue.priority) == (
        "Disk full",
        "The disk is full.\n\nSee the graph.",
        "To Do",
        ("infra",),
        "Medium",
    )
    assert issue.external_id == fake.issues["OPS-1"]["id"]
    assert issue.url == f"{url}/browse/OPS-1"
    assert issue.extra["issue_type"] == "Task"
    assert (by_number.number, by_number.assignees, by_number.extra["assignee_name"]) == (
        "OPS-2",
        ("acc-ann",),
        "Ann Lee",
    )
    assert [(c.body, c.author) for c in comments] == [("First line\nsecond line", "Ann Lee")]


async def test_create_an_issue_with_priority_assignee_and_status(seeded, waits):
    fake, url = seeded
    jira = client(url, waits)
    created = await jira.create_issue(
        "OPS",
        IssueDraft(
            title="New alert",
            description="Paging\n\nat night",
            labels=("alerting",),
            assignee="ann@example.com",
            priority="High",
            status="In Progress",
            issue_type="Bug",
        ),
    )
    await jira.close()
    stored = fake.issues[created.number]["fields"]
    assert stored["description"] == fake_adf("Paging\n\nat night")
    assert (stored["priority"]["name"], stored["assignee"]["accountId"]) == ("High", "acc-ann")
    assert stored["issuetype"]["name"] == "Bug"
    assert (created.state, created.body, created.labels) == (
        "In Progress",
        "Paging\n\nat night",
        ("alerting",),
    )
    assert fake.requests_to("POST", "/transitions")[0].body == {"transition": {"id": "21"}}


async def test_update_an_issue_and_move_it_through_the_workflow(seeded, waits):
    _fake, url = seeded
    jira = client(url, waits)
    updated = await jira.update_issue(
        "OPS",
        "OPS-2",
        IssueChanges(title="Keys", status="closed", priority="Low", assignee="", labels=()),
    )
    with pytest.raises(TrackerError) as no_such_status:
        await jira.update_issue("OPS", "OPS-2", IssueChanges(status="Blocked"))
    with pytest.raises(TrackerError) as bad_priority:
        await jira.update_issue("OPS", "OPS-2", IssueChanges(priority="Urgent"))
    await jira.close()
    assert (updated.title, updated.state, updated.priority, updated.assignees) == (
        "Keys",
        "Done",
        "Low",
        (),
    )
    assert no_such_status.value.status == 422
    assert "allows: Done, In Progress, To Do" in no_such_status.value.message
    assert "'Blocked'" in no_such_status.value.message
    assert bad_priority.value.status == 400
    assert "Priority name 'Urgent' is not valid" in bad_priority.value.message
    assert "OPS" in bad_priority.value.message


async def test_comments_written_as_adf(seeded, waits):
    fake, url = seeded
    jira = client(url, waits)
    added = await jira.add_comment("OPS", "OPS-3", "Done by\nthe bot", in_reply_to="1")
    edited = await jira.update_comment("OPS", "OPS-3", added.external_id, body="Edited")
    unchanged = await jira.update_comment("OPS", "OPS-3", added.external_id)
    with pytest.raises(TrackerError) as on_a_line:
        await jira.add_comment("OPS", "OPS-3", "x", path="a.py", line=1)
    with pytest.raises(TrackerError) as resolving:
        await jira.update_comment("OPS", "OPS-3", added.external_id, resolved=True)
    await jira.close()
    sent = fake.requests_to("POST", "/issue/OPS-3/comment")[0].body["body"]
    assert to_text(sent) == "Done by\nthe bot"
    assert sent == fake_adf("Done by\nthe bot")
    assert (added.body, edited.body, added.author) == ("Done by\nthe bot", "Edited", "Preloop Bot")
    assert unchanged.body == "Edited"
    assert "no pull requests" in on_a_line.value.message
    assert "cannot be resolved" in resolving.value.message


async def test_pull_request_methods_say_jira_has_none(seeded, waits):
    _, url = seeded
    jira = client(url, waits)
    calls = [
        jira.get_pull_request("OPS", "OPS-1"),
        jira.create_pull_request(
            "OPS", PullRequestDraft(title="x", source_branch="a", target_branch="b")
        ),
        jira.update_pull_request("OPS", "OPS-1", PullRequestChanges(title="x")),
    ]
    for call in calls:
        with pytest.raises(TrackerError) as refused:
            await call
        assert "Jira at 127.0.0.1" in refused.value.message
        assert "no pull requests" in refused.value.message
        assert "OPS" in refused.value.message
    await jira.close()


# --- errors -------------------------------------------------------------------------------
async def test_errors_name_jira_the_project_and_the_token_ref(seeded, waits):
    _, url = seeded
    bad = JiraClient(url, "wrong-api-token", token_ref=REF, username=EMAIL, retry=waits.policy)
    with pytest.raises(TrackerError) as rejected:
        await bad.issues_since("OPS", None)
    await bad.close()
    jira = client(url, waits)
    with pytest.raises(TrackerError) as missing_issue:
        await jira.get_issue("OPS", "OPS-99")
    with pytest.raises(TrackerError) as missing_project:
        await jira.issues_since("NOPE", None)
    with pytest.raises(TrackerError) as gone:
        await jira._http.request("POST", "/search", project="OPS", json={"jql": "project = OPS"})
    await jira.close()
    wrong_basic = base64.b64encode(f"{EMAIL}:wrong-api-token".encode()).decode()
    assert rejected.value.status == 401
    assert REF in rejected.value.message
    assert "Jira at 127.0.0.1" in rejected.value.message
    assert "OPS" in rejected.value.message
    assert "wrong-api-token" not in rejected.value.message
    assert wrong_basic not in rejected.value.message
    assert missing_issue.value.status == 404
    assert "Issue does not exist" in missing_issue.value.message
    assert "issue OPS-99" in missing_issue.value.message
    assert missing_project.value.status == 400
    assert (
        "The value 'NOPE' does not exist for the field 'project'" in missing_project.value.message
    )
    assert gone.value.status == 410
    assert "removed" in gone.value.message
    assert "/rest/api/3/search/jql" in gone.value.message


async def test_a_429_is_retried_after_retry_after(seeded, waits):
    fake, url = seeded
    fake.limit(1, retry_after=3)
    jira = client(url, waits)
    answer = await jira.issues_since("OPS", None)
    await jira.close()
    assert len(answer.items) == 5
    assert waits.seen == [3.0]
    assert len(fake.requests_to("POST", "/search/jql")) == 2


async def test_http_tracker_clients_pass_the_username(seeded, waits):
    fake, url = seeded
    custody = Custody(
        {"env": EnvBackend({"JIRA_TOKEN": TOKEN}, ["JIRA_*"])},
        auditor=None,  # type: ignore[arg-type]
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tracker = Tracker(
        id="trk_3",
        account_id="acc_1",
        name="jira",
        kind=TrackerKind.JIRA,
        base_url=url,
        token_ref="env:JIRA_TOKEN",
        username=EMAIL,
        created_at=now,
        updated_at=now,
    )
    jira = await HttpTrackerClients(custody, retry=waits.policy).client(tracker)
    info = await jira.test_connection("OPS")
    await jira.close()
    assert jira.kind is TrackerKind.JIRA
    assert info.project == "OPS"
    assert fake.requests[-1].headers["authorization"].startswith("Basic ")
    assert fake.bot["accountId"] == BOT_ACCOUNT
    assert api_root("https://acme.atlassian.net/") == "https://acme.atlassian.net/rest/api/3"


# --- ADF ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text",
    ["", "One line", "Two\nlines", "Para one\n\nPara two\nwith a break", "```python\nx = 1\n```"],
)
def test_plain_text_round_trips_through_adf(text):
    assert to_text(to_adf(text)) == text


def test_rich_adf_reads_as_text():
    document = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Plan"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "mention", "attrs": {"id": "acc-ann", "text": "@Ann"}},
                    {"type": "text", "text": " see "},
                    {"type": "inlineCard", "attrs": {"url": "https://x.test/1"}},
                    {"type": "emoji", "attrs": {"shortName": ":tada:", "text": "🎉"}},
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}
                        ],
                    },
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "b"}]}
                        ],
                    },
                ],
            },
            {"type": "rule"},
            {
                "type": "blockquote",
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "quoted"}]}],
            },
        ],
    }
    assert to_text(document) == (
        "Plan\n\n@Ann see https://x.test/1🎉\n\n- a\n- b\n\n---\n\n> quoted"
    )
    assert to_text("already text") == "already text"
    assert to_text(None) == ""


async def test_a_user_without_the_permission_is_a_403_named(seeded, waits):
    fake, url = seeded
    fake.forbid("PUT", "/issue/OPS-1")
    jira = client(url, waits)
    with pytest.raises(TrackerError) as refused:
        await jira.update_issue("OPS", "OPS-1", IssueChanges(title="x"))
    await jira.close()
    assert refused.value.status == 403
    assert "refused permission for project OPS" in refused.value.message
    assert "You do not have permission to edit issues" in refused.value.message
    assert TOKEN not in refused.value.message
