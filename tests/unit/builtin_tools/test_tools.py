"""Each built-in tool (hub/builtin_tools/runner.py) over the in-memory tracker storage and a
scripted tracker: what it answers, what it writes to the tracker, what the index holds after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from hub.builtin_tools.definitions import DEFINITIONS
from hub.builtin_tools.references import parse
from hub.builtin_tools.runner import BuiltinTools
from hub.clock import FrozenClock
from hub.compliance.catalogue import PACKAGED, load_catalogue
from hub.compliance.service import ComplianceService
from hub.errors import TrackerError
from hub.search.duplicates import Duplicates
from hub.search.embedders import HashingEmbedder
from hub.search.indexer import Indexer
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.ports import TrackerClients
from hub.trackers.records import (
    IssueChanges,
    IssueKind,
    PullRequestChanges,
    RemoteComment,
    TrackerKind,
)
from hub.trackers.sync import Syncer
from tests.unit.builtin_tools.fake_tracker import T0, Clients, WritingTracker, remote, tracker

READY = (
    "Users cannot reset their password because the reset link expires after one minute. "
    "The goal is a link valid for an hour so that people on slow mail still get in.\n\n"
    "## Acceptance criteria\n- [ ] the link works for 60 minutes\n- [ ] expired links say so"
)


@dataclass
class Access:
    trackers: InMemoryTrackerStorage | None
    tracker_clients: TrackerClients | None
    compliance: ComplianceService | None = None  # the packaged catalogue's rules
    duplicates: Duplicates | None = None  # create_issue checks no duplicates


@dataclass
class World:
    tools: BuiltinTools
    storage: InMemoryTrackerStorage
    gh: WritingTracker
    jira: WritingTracker
    access: Access

    async def run(self, tool: str, **arguments: Any) -> tuple[bool, dict[str, Any]]:
        result = (await self.tools.run("acc", tool, arguments)).as_dict()
        structured = result["structuredContent"]
        assert [{"type": "text", "text": result["content"][0]["text"]}] == result["content"]
        return result["isError"], structured

    async def ok(self, tool: str, **arguments: Any) -> dict[str, Any]:
        is_error, structured = await self.run(tool, **arguments)
        assert not is_error, structured
        return structured

    async def refused(self, tool: str, **arguments: Any) -> str:
        is_error, structured = await self.run(tool, **arguments)
        assert is_error, structured
        return str(structured["error"])


async def world() -> World:
    storage = InMemoryTrackerStorage()
    gh, jira = WritingTracker(), WritingTracker(TrackerKind.JIRA)
    gh.put(
        "acme/app", remote(1, "Password reset links expire too soon", body=READY, labels=("bug",))
    )
    gh.put("acme/app", remote(2, "fix"))
    gh.put("acme/app", remote(7, "Longer reset links", kind=IssueKind.PULL_REQUEST))
    gh.comment_lists[("acme/app", "1")] = [
        RemoteComment(external_id="c1", body="seen it too", created_at=T0, updated_at=T0)
    ]
    gh.diffs[("acme/app", "7")] = "--- a/x\n+++ b/x\n"
    jira_issue = remote(0, "Billing export", project="OPS")
    jira.put(
        "OPS",
        msgspec_replace(jira_issue, number="OPS-3", url="https://x.atlassian.net/browse/OPS-3"),
    )
    clients = Clients(trk_gh=gh, trk_jira=jira)
    github = tracker()
    jira_tracker = tracker(
        "trk_jira", "jira", TrackerKind.JIRA, ("OPS",), base_url="https://x.atlassian.net"
    )
    await storage.trackers.add(github)
    await storage.trackers.add(jira_tracker)
    clock = FrozenClock(T0)
    syncer = Syncer(storage, clients, clock)
    await syncer.scan(github)
    await syncer.scan(jira_tracker)
    gh.gets = jira.gets = 0
    access = Access(storage, clients)
    return World(BuiltinTools(access, clock), storage, gh, jira, access)


def msgspec_replace(issue: Any, **changes: Any) -> Any:
    import msgspec

    return msgspec.structs.replace(issue, **changes)


# -- reads ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    ["acme/app#1", "https://github.com/acme/app/issues/1", "ID"],
)
async def test_get_issue_answers_from_the_index_by_key_url_or_id(reference: str) -> None:
    w = await world()
    [indexed] = await w.storage.issues.find("acc", "acme/app#1")
    reference = indexed.id if reference == "ID" else reference

    answer = await w.ok("get_issue", issue=reference)

    assert "index" == answer["source"]
    assert ("acme/app#1", "gh", "Password reset links expire too soon") == (
        answer["issue"]["key"],
        answer["issue"]["tracker"],
        answer["issue"]["title"],
    )
    assert ["seen it too"] == [c["body"] for c in answer["comments"]]
    assert 0 == w.gh.gets  # nothing was read from the tracker


async def test_get_issue_with_refresh_reads_live_and_updates_the_index() -> None:
    w = await world()
    w.gh.put("acme/app", remote(1, "Renamed at the tracker", body=READY))

    answer = await w.ok("get_issue", issue="acme/app#1", refresh=True)

    assert ("live", "Renamed at the tracker") == (answer["source"], answer["issue"]["title"])
    [indexed] = await w.storage.issues.find("acc", "acme/app#1")
    assert "Renamed at the tracker" == indexed.title


async def test_an_issue_not_yet_indexed_is_read_live_by_key_and_jira_keys_resolve() -> None:
    w = await world()
    w.gh.put("acme/app", remote(9, "Filed a minute ago"))

    fresh = await w.ok("get_issue", issue="acme/app#9")
    jira = await w.ok("get_issue", issue="OPS-3")

    assert ("live", "Filed a minute ago") == (fresh["source"], fresh["issue"]["title"])
    assert ("index", "jira", "OPS-3") == (
        jira["source"],
        jira["issue"]["tracker"],
        jira["issue"]["key"],
    )


async def test_unknown_references_and_bad_arguments_are_refusals_naming_them() -> None:
    w = await world()

    assert "get_issue: issue 'nonsense' is not an issue Preloop knows" in await w.refused(
        "get_issue", issue="nonsense"
    )
    assert "get_issue: the argument 'issue' is required" == await w.refused("get_issue")
    assert "unknown argument 'isue'" in await w.refused("get_issue", isue="acme/app#1")
    assert "the argument 'limit'" in await w.refused("search", query="x", limit=0)


async def test_search_uses_the_full_text_index_and_says_so() -> None:
    w = await world()

    answer = await w.ok(
        "search", query="password reset", project="acme/app", search_type="fulltext"
    )

    assert ("fulltext", "fulltext", None) == (
        answer["search_type"],
        answer["engine"],
        answer["model"],
    )
    assert ["acme/app#1", "acme/app#7"] == [r["key"] for r in answer["results"]]
    assert [4.0, 2.0] == [r["score"] for r in answer["results"]]  # title words count double
    assert [] == (await w.ok("search", query="billing", project="acme/app"))["results"]
    assert ["OPS-3"] == [r["key"] for r in (await w.ok("search", query="billing"))["results"]]


async def test_search_is_hybrid_by_default_and_says_what_is_not_embedded_yet() -> None:
    w = await world()

    before = await w.ok("search", query="password reset")
    await Indexer(w.storage, HashingEmbedder(), FrozenClock(T0)).run_once()
    after = await w.ok("search", query="password reset")

    assert ("hybrid", "hybrid-rrf(fulltext+exact)", "local:hashing-v1@512") == (
        after["search_type"],
        after["engine"],
        after["model"],
    )
    assert (4, 0) == (before["pending"], after["pending"])
    assert "acme/app#1" == after["results"][0]["key"]  # found by words and by meaning
    assert after["results"][0]["score"] > after["results"][1]["score"] > 0


async def test_similarity_search_finds_by_meaning_what_full_text_misses() -> None:
    w = await world()
    await Indexer(w.storage, HashingEmbedder(), FrozenClock(T0)).run_once()

    # neither word is in any issue as written ("password", "reset"): lexical similarity only
    words = await w.ok("search", query="resetting passwords", search_type="fulltext")
    meaning = await w.ok("search", query="resetting passwords", search_type="similarity", limit=1)

    assert [] == words["results"]
    assert ["acme/app#1"] == [r["key"] for r in meaning["results"]]
    assert "exact" == meaning["engine"]


async def test_a_query_without_words_lists_recent_issues_by_default() -> None:
    w = await world()

    listed = await w.ok("search", query="?")

    assert "fulltext" == listed["search_type"]
    assert 4 == len(listed["results"])
    similar = await w.ok("search", query="?", search_type="similarity")
    assert [] == similar["results"]  # nothing to compare: no result is near it
    assert "search_type" in await w.refused("search", query="x", search_type="vector")


async def test_a_project_several_trackers_sync_is_an_error_naming_them() -> None:
    w = await world()
    await w.storage.trackers.add(tracker("trk_gh2", "gh-mirror", projects=("acme/app",)))

    message = await w.refused("search", query="x", project="acme/app")

    assert "synced by several trackers (gh, gh-mirror)" in message
    assert [] == (await w.ok("search", query="x", project="gh-mirror:acme/app"))["results"]


async def test_estimate_compliance_is_rule_based_deterministic_and_per_issue() -> None:
    w = await world()

    answer = await w.ok("estimate_compliance", issues=["acme/app#1", "acme/app#2", "nope"])

    assert ("rules", "DoR") == (answer["engine"], answer["compliance_metric"])
    ready, vague, missing = answer["results"]
    assert 1.0 == ready["compliance_factor"]
    assert 0.0 == vague["compliance_factor"]
    assert {"compliance_factor", "reason", "suggestion", "annotated_description"} <= set(vague)
    assert "no acceptance criteria" in vague["reason"]
    assert "not an issue Preloop knows" in missing["error"]
    assert answer == await w.ok("estimate_compliance", issues=["acme/app#1", "acme/app#2", "nope"])
    assert "compliance_metric" in await w.refused(
        "estimate_compliance", issues=["acme/app#1"], compliance_metric="DoD"
    )


async def test_improve_compliance_proposes_the_missing_sections_and_writes_nothing() -> None:
    w = await world()

    [result] = (await w.ok("improve_compliance", issues=["acme/app#2"]))["results"]

    assert "## Acceptance criteria" in result["improved_description"]
    assert "## Context" in result["improved_description"]
    assert [] == w.gh.writes


async def test_get_pull_request_reads_the_diff_live_and_the_rest_from_the_index() -> None:
    w = await world()

    live = await w.ok("get_pull_request", pull_request="acme/app#7")
    indexed = await w.ok("get_pull_request", pull_request="acme/app#7", include_diff=False)

    assert ("live", "--- a/x\n+++ b/x\n") == (live["source"], live["diff"])
    assert ("index", "pull_request") == (indexed["source"], indexed["pull_request"]["kind"])
    assert "diff" not in indexed
    assert 1 == w.gh.gets


async def test_pull_request_tools_on_jira_or_on_an_issue_say_why_not() -> None:
    w = await world()

    assert "has no pull or merge requests" in await w.refused(
        "get_pull_request", pull_request="OPS-3"
    )
    assert "is an issue, not a pull or merge request" in await w.refused(
        "update_pull_request", pull_request="acme/app#1", review_action="approve"
    )
    assert "needs github or gitlab" in await w.refused(
        "create_pull_request",
        project="jira:OPS",
        title="t",
        source_branch="a",
        target_branch="b",
    )


# -- writes -----------------------------------------------------------------------------------


async def test_create_issue_writes_to_the_tracker_then_indexes_it() -> None:
    w = await world()

    answer = await w.ok(
        "create_issue", project="acme/app", title="Export fails", description="d", labels=["bug"]
    )

    assert ("created", "acme/app#101") == (answer["status"], answer["issue"]["key"])
    assert [("create_issue", "acme/app", "101")] == [x[:3] for x in w.gh.writes]
    [indexed] = await w.storage.issues.find("acc", "acme/app#101")
    assert ("Export fails", ("bug",)) == (indexed.title, indexed.labels)


async def checking(w: World, *, indexed: bool = True) -> Duplicates:
    """The world's create_issue checks duplicates with the hashing embedder (its index built
    when ``indexed``)."""
    duplicates = Duplicates(
        w.storage, w.storage.duplicates, HashingEmbedder, FrozenClock(T0), threshold=0.0
    )
    if indexed:
        await duplicates.scan("acc")  # embeds and stores every issue's vector
    w.access.duplicates = duplicates
    return duplicates


async def test_create_issue_answers_possible_duplicates_and_creates_nothing() -> None:
    w = await world()
    await checking(w)

    answer = await w.ok(
        "create_issue",
        project="acme/app",
        title="Password reset links expire too soon",
        description=READY,
    )

    assert ("possible_duplicates", False) == (answer["status"], answer["created"])
    (candidate,) = answer["candidates"]
    assert ("acme/app#1", "gh", "Password reset links expire too soon", False) == (
        candidate["key"],
        candidate["tracker"],
        candidate["title"],
        candidate["closed"],
    )
    assert candidate["url"]
    assert candidate["score"] > 0.9
    assert "force: true" in answer["message"]
    assert {
        "model": "local:hashing-v1@512",
        "engine": "exact",
        "threshold": 0.45,
        "index_ready": True,
    } == answer["duplicate_check"]
    assert [] == w.gh.writes  # nothing reached the tracker


async def test_create_issue_with_force_creates_it_anyway() -> None:
    w = await world()
    await checking(w)

    answer = await w.ok(
        "create_issue",
        project="acme/app",
        title="Password reset links expire too soon",
        description=READY,
        force=True,
    )

    assert ("created", True, "acme/app#101") == (
        answer["status"],
        answer["created"],
        answer["issue"]["key"],
    )
    assert "duplicate_check" not in answer  # not looked for
    assert [("create_issue", "acme/app", "101")] == [x[:3] for x in w.gh.writes]


async def test_create_issue_without_candidates_creates_and_says_how_it_checked() -> None:
    w = await world()
    await checking(w)

    answer = await w.ok(
        "create_issue", project="acme/app", title="Dark mode for the settings page", description=""
    )

    assert (True, True) == (answer["created"], answer["duplicate_check"]["index_ready"])


async def test_create_issue_creates_when_the_index_is_not_ready_and_says_so() -> None:
    w = await world()
    await checking(w, indexed=False)

    answer = await w.ok(
        "create_issue",
        project="acme/app",
        title="Password reset links expire too soon",
        description=READY,
    )

    assert ("created", True, False) == (
        answer["status"],
        answer["created"],
        answer["duplicate_check"]["index_ready"],
    )
    assert "of acme/app are not embedded yet" in answer["duplicate_check"]["note"]


async def test_update_issue_sends_only_the_changes_and_updates_the_index() -> None:
    w = await world()

    answer = await w.ok("update_issue", issue="acme/app#2", status="closed")

    assert "closed" == answer["issue"]["state"]
    assert [("update_issue", "acme/app", "2", IssueChanges(status="closed"))] == w.gh.writes
    [indexed] = await w.storage.issues.find("acc", "acme/app#2")
    assert "closed" == indexed.state
    assert "nothing to change" in await w.refused("update_issue", issue="acme/app#2")


async def test_a_tracker_error_is_an_error_result_with_the_trackers_message() -> None:
    w = await world()
    w.gh.fail_next = TrackerError(
        "GitHub refused acme/app: the token lacks the issues:write permission (403)",
        tracker="gh",
        project="acme/app",
        status=403,
    )

    is_error, structured = await w.run("update_issue", issue="acme/app#2", title="Better title")

    assert is_error
    assert {
        "error": "GitHub refused acme/app: the token lacks the issues:write permission (403)",
        "tool": "update_issue",
        "tracker": "gh",
        "project": "acme/app",
        "status": 403,
    } == structured
    [indexed] = await w.storage.issues.find("acc", "acme/app#2")
    assert "fix" == indexed.title  # nothing changed in the index


async def test_comments_are_written_then_indexed_and_review_comments_need_both_path_and_line() -> (
    None
):
    w = await world()

    added = await w.ok("add_comment", target="acme/app#1", comment="On it")
    review = await w.ok(
        "add_comment", target="acme/app#7", comment="nit", path="x.py", line=3, side="LEFT"
    )
    edited = await w.ok("update_comment", target="acme/app#1", comment_id="c1", body="Fixed")

    assert ("created", "On it") == (added["status"], added["comment"]["body"])
    assert ("review_comment", "x.py", 3) == (
        review["comment"]["kind"],
        review["comment"]["path"],
        review["comment"]["line"],
    )
    assert "Fixed" == edited["comment"]["body"]
    [issue] = await w.storage.issues.find("acc", "acme/app#1")
    bodies = [c.body for c in await w.storage.issues.comments("acc", issue.id)]
    assert ["Fixed", "On it"] == sorted(bodies)  # both written at T0
    assert "needs both 'path' and 'line'" in await w.refused(
        "add_comment", target="acme/app#7", comment="x", path="x.py"
    )
    assert "has no pull or merge requests or review threads" in await w.refused(
        "update_comment", target="OPS-3", comment_id="c1", resolved=True
    )


async def test_pull_requests_are_created_and_reviewed_through_the_tracker() -> None:
    w = await world()

    created = await w.ok(
        "create_pull_request",
        project="acme/app",
        title="Longer links",
        source_branch="fix/links",
        target_branch="main",
    )
    reviewed = await w.ok(
        "update_pull_request",
        pull_request=created["pull_request"]["key"],
        review_action="approve",
        review_comments=[{"path": "a.py", "line": 2, "body": "good"}],
    )

    assert ("pull_request", "acme/app#101") == (
        created["pull_request"]["kind"],
        created["pull_request"]["key"],
    )
    assert "approve" == reviewed["review"]
    what, _, number, changes = w.gh.writes[-1]
    assert ("update_pull_request", "101") == (what, number)
    assert isinstance(changes, PullRequestChanges)
    assert ("approve", "a.py") == (changes.review_action, changes.review_comments[0].path)


# -- listing ----------------------------------------------------------------------------------


async def test_the_tools_are_listed_only_for_an_account_with_a_tracker() -> None:
    w = await world()
    names = [d["name"] for d in DEFINITIONS]

    assert names == [d["name"] for d in await w.tools.listed("acc")]
    assert [] == await w.tools.listed("another-account")
    assert "No issue tracker is connected" in str(
        (await w.tools.run("another-account", "search", {"query": "x"})).as_dict()["content"]
    )
    w.access.trackers = None
    assert [] == await w.tools.listed("acc")


async def test_an_account_with_only_jira_is_not_offered_pull_request_tools() -> None:
    storage = InMemoryTrackerStorage()
    await storage.trackers.add(tracker("trk_jira", "jira", TrackerKind.JIRA, ("OPS",)))
    tools = BuiltinTools(Access(storage, None), FrozenClock(T0))

    listed = [d["name"] for d in await tools.listed("acc")]

    assert [
        "get_issue",
        "create_issue",
        "update_issue",
        "search",
        "estimate_compliance",
        "improve_compliance",
        "add_comment",
        "update_comment",
    ] == listed


@pytest.mark.parametrize(
    ("reference", "kinds", "project", "number", "pull_request"),
    [
        ("https://github.com/acme/app/pull/7", {"github"}, "acme/app", "7", True),
        ("https://ghe.example.com/acme/app/issues/3/", {"github"}, "acme/app", "3", False),
        (
            "https://gitlab.example.com/g/sub/app/-/merge_requests/4",
            {"gitlab"},
            "g/sub/app",
            "!4",
            True,
        ),
        ("https://gitlab.com/g/app/-/issues/5", {"gitlab"}, "g/app", "5", False),
        ("https://acme.atlassian.net/browse/OPS-12", {"jira"}, "OPS", "OPS-12", False),
        ("g/sub/app!4", {"gitlab"}, "g/sub/app", "!4", True),
        ("acme/app#12", {"github", "gitlab"}, "acme/app", "12", None),
        ("ops-12", {"jira"}, "OPS", "OPS-12", False),
    ],
)
def test_references_parse_into_the_trackers_identifiers(
    reference: str, kinds: set[str], project: str, number: str, pull_request: bool | None
) -> None:
    parsed = parse(reference)

    assert parsed is not None
    assert (kinds, project, number, pull_request) == (
        {k.value for k in parsed.kinds},
        parsed.project,
        parsed.number,
        parsed.pull_request,
    )
    assert parse("just words") is None


async def test_a_jira_comment_is_edited_but_has_no_thread_to_resolve() -> None:
    w = await world()
    w.jira.comment_lists[("OPS", "OPS-3")] = [
        RemoteComment(external_id="c9", body="typo", created_at=T0, updated_at=T0)
    ]

    edited = await w.ok("update_comment", target="OPS-3", comment_id="c9", body="fixed")

    assert ("updated", "fixed", "OPS-3") == (
        edited["status"],
        edited["comment"]["body"],
        edited["target"]["key"],
    )
    assert [("update_comment", "OPS", "OPS-3")] == [x[:3] for x in w.jira.writes]


async def test_a_jira_project_key_is_taken_in_any_case() -> None:
    w = await world()

    found = await w.ok("search", query="billing", project="ops")
    created = await w.ok("create_issue", project="ops", title="Rotate keys", description="d")

    assert ["OPS-3"] == [r["key"] for r in found["results"]]
    assert ("create_issue", "OPS") == w.jira.writes[0][:2]
    assert "jira" == created["issue"]["tracker"]


async def test_compliance_takes_invest_and_risk_and_the_hubs_scorer() -> None:
    w = await world()

    invest = await w.ok("estimate_compliance", issues=["acme/app#1"], compliance_metric="INVEST")
    risk = await w.ok("improve_compliance", issues=["acme/app#2"], compliance_metric="Risk")

    assert ("rules", "INVEST") == (invest["engine"], invest["results"][0]["metric"])
    assert {"independent", "testable"} <= set(invest["results"][0]["checks"])
    assert "## Rollback plan" in risk["results"][0]["improved_description"]
    w.access.compliance = ComplianceService(
        load_catalogue(PACKAGED), None, FrozenClock(T0), model="ignored-without-a-gateway"
    )
    assert "rules" == (await w.ok("estimate_compliance", issues=["acme/app#1"]))["engine"]
