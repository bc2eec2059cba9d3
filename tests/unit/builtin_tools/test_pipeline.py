"""The built-in tools through the tool-call pipeline (hub/tool_calls): the same role,
allow-list, policy (``source: builtin``, CEL on their arguments), justification, approval and
audit path as upstream tools, then run by the built-in runner."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hub.builtin_tools.runner import BuiltinTools
from hub.compliance.service import ComplianceService
from hub.keys import Caller
from hub.records import Role
from hub.search.duplicates import Duplicates
from hub.tool_calls import Forwarded, Held, Reason, Refused
from hub.trackers.memory import InMemoryTrackerStorage
from hub.trackers.records import IssueKind
from hub.trackers.sync import Syncer
from tests.unit.builtin_tools.fake_tracker import Clients, WritingTracker, remote, tracker
from tests.unit.core.test_firewall import World, make_world

POLICY = """
version: "1.0"
metadata: {name: tracker}
defaults: {action: deny, unknown_tools: deny}
approval_workflows:
  - {name: review, timeout_seconds: 60, async_approval: true}
  - {name: now, timeout_seconds: 60}
tools:
  - name: create_pull_request
    source: builtin
    approval_workflow: now
    action: require_approval
  - {name: get_issue, source: builtin, action: allow}
  - {name: search, action: deny}           # an upstream tool named search, on any server
  - {name: search, source: builtin, action: allow}
  - name: update_pull_request
    source: builtin
    approval_workflow: review
    action: allow
    conditions:
      - id: approve-needs-human
        expression: "has(args.review_action) && args.review_action == 'approve'"
        action: require_approval
      - {id: no-closing, expression: "has(args.state) && args.state == 'closed'", action: deny,
         message: "closing a pull request is for humans"}
  - {name: add_comment, source: builtin, justification: required, action: allow}
"""


@dataclass
class Access:
    trackers: InMemoryTrackerStorage
    tracker_clients: Clients
    compliance: ComplianceService | None = None  # the packaged catalogue's rules
    duplicates: Duplicates | None = None  # create_issue checks no duplicates


async def world(heartbeat: float = 10.0) -> tuple[World, WritingTracker]:
    w = await make_world(POLICY, heartbeat=heartbeat)
    storage = InMemoryTrackerStorage()
    gh = WritingTracker()
    gh.put("acme/app", remote(1, "Password reset links expire too soon"))
    gh.put("acme/app", remote(7, "Longer reset links", kind=IssueKind.PULL_REQUEST))
    github = tracker(account_id=w.agent.account_id)
    await storage.trackers.add(github)
    clients = Clients(trk_gh=gh)
    await Syncer(storage, clients, w.clock).scan(github)
    w.tool_calls.use_builtins(BuiltinTools(Access(storage, clients), w.clock))
    return w, gh


def structured(outcome: Any) -> dict[str, Any]:
    assert isinstance(outcome, Forwarded), outcome
    result = outcome.result.as_dict()
    assert result["isError"] is False, result
    return dict(result["structuredContent"])


async def records(w: World, kind: str = "tool.call") -> list[dict[str, Any]]:
    account = await w.identity.default_account()
    return [e.data for e in await w.storage.audit.all(account.id) if e.kind == kind]


async def test_an_allowed_built_in_runs_after_its_attempt_and_is_audited_as_preloop() -> None:
    w, _ = await world()

    outcome = await w.tool_calls.call(w.agent, "get_issue", {"issue": "acme/app#1"})

    assert "Password reset links expire too soon" == structured(outcome)["issue"]["title"]
    [attempt] = await records(w, "tool.attempt")
    [record] = await records(w)
    assert ("preloop", "get_issue", {"issue": "acme/app#1"}) == (
        attempt["server"],
        attempt["tool"],
        attempt["args"],
    )
    assert ("preloop", "get_issue", "allow", "tools.get_issue.action", "ok") == (
        record["server"],
        record["tool"],
        record["decision"],
        record["rule"],
        record["status"],
    )
    assert [] == w.upstream.calls  # nothing went to an upstream server


async def test_builtin_entries_match_only_built_in_calls_and_mcp_entries_only_upstream() -> None:
    w, _ = await world()

    builtin = await w.tool_calls.call(w.agent, "search", {"query": "reset"})
    upstream = await w.tool_calls.call(w.agent, "x__search", {"query": "reset"})
    unlisted = await w.tool_calls.call(w.agent, "create_issue", {"project": "acme/app"})

    assert ["acme/app#7", "acme/app#1"] == [r["key"] for r in structured(builtin)["results"]]
    assert isinstance(upstream, Refused)
    assert (Reason.POLICY_DENY, "tools.search.action") == (upstream.reason, upstream.rule)
    assert isinstance(unlisted, Refused)
    assert (Reason.POLICY_DENY, "defaults.unknown_tools") == (unlisted.reason, unlisted.rule)


async def test_a_rule_on_the_arguments_denies_and_nothing_reaches_the_tracker() -> None:
    w, gh = await world()

    outcome = await w.tool_calls.call(
        w.agent, "update_pull_request", {"pull_request": "acme/app#7", "state": "closed"}
    )

    assert isinstance(outcome, Refused)
    assert ("no-closing", "deny") == (outcome.rule, outcome.decision)
    assert "closing a pull request is for humans" in outcome.message
    assert [] == gh.writes
    [record] = await records(w)
    assert ("preloop", "update_pull_request", "denied") == (
        record["server"],
        record["tool"],
        record["status"],
    )


async def test_an_approval_held_built_in_runs_once_when_approved_and_polled() -> None:
    w, gh = await world()
    arguments = {"pull_request": "acme/app#7", "review_action": "approve"}

    held = await w.tool_calls.call(w.agent, "update_pull_request", arguments)
    assert isinstance(held, Held)
    assert [] == gh.writes
    await w.approvals.decide(
        w.agent.account_id, held.approval_id, approver=w.approver, approve=True
    )
    first = await w.tool_calls.call(
        w.agent, "get_approval_status", {"approval_id": held.approval_id}
    )
    again = await w.tool_calls.call(
        w.agent, "get_approval_status", {"approval_id": held.approval_id}
    )

    assert "approve" == structured(first)["review"]
    assert structured(first) == structured(again)  # replayed, not run twice
    assert ["update_pull_request"] == [write[0] for write in gh.writes]


async def test_a_required_justification_and_the_keys_allow_list_apply_to_built_ins() -> None:
    w, gh = await world()
    created = await w.identity.create_key(
        w.agent.account_id, name="reader", role=Role.AGENT, actor="t", tools=["get_issue"]
    )
    reader: Caller = await w.identity.authenticate(created.secret)

    unjustified = await w.tool_calls.call(
        w.agent, "add_comment", {"target": "acme/app#1", "comment": "on it"}
    )
    justified = await w.tool_calls.call(
        w.agent,
        "add_comment",
        {"target": "acme/app#1", "comment": "on it", "justification": "triage"},
    )
    outside = await w.tool_calls.call(reader, "search", {"query": "reset"})
    inside = await w.tool_calls.call(reader, "get_issue", {"issue": "acme/app#1"})

    assert isinstance(unjustified, Refused)
    assert "tools.add_comment.justification" == unjustified.rule
    assert "on it" == structured(justified)["comment"]["body"]
    assert [{"target": "acme/app#1", "comment": "on it"}] == [
        {k: v for k, v in w_.items() if k in ("target", "comment")}
        for w_ in [r["args"] for r in await records(w) if r["tool"] == "add_comment"][1:]
    ]
    assert isinstance(outside, Refused)
    assert Reason.ALLOW_LIST == outside.reason
    assert isinstance(inside, Forwarded)
    assert ["add_comment"] == [write[0] for write in gh.writes]


async def test_a_sync_approval_holds_a_built_in_until_a_human_approves_then_runs_it() -> None:
    w, gh = await world(heartbeat=0.01)
    waiting = asyncio.Event()

    async def progress(done: float, total: float | None, message: str | None) -> None:
        waiting.set()

    call = asyncio.create_task(
        w.tool_calls.call(
            w.agent,
            "create_pull_request",
            {"project": "acme/app", "title": "t", "source_branch": "a", "target_branch": "main"},
            progress=progress,
        )
    )
    await asyncio.wait_for(waiting.wait(), timeout=10)
    assert [] == gh.writes
    [pending] = await w.approvals.list(w.agent.account_id)
    assert ("preloop", "create_pull_request") == (pending.server, pending.tool)
    await w.approvals.decide(w.agent.account_id, pending.id, approver=w.approver, approve=True)

    outcome = await asyncio.wait_for(call, timeout=10)

    assert "created" == structured(outcome)["status"]
    assert ["create_pull_request"] == [write[0] for write in gh.writes]
