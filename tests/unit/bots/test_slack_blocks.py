"""The Slack message: details, buttons carrying the request id, safe truncation."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bots.slack import APPROVE_ACTION, DENY_ACTION, arguments_text, pending_blocks, settled_blocks
from hub.records import ApprovalRequest, ApprovalStatus

AT = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def _request(**fields: object) -> ApprovalRequest:
    base: dict[str, object] = {
        "id": "apr_1",
        "account_id": "acc_1",
        "principal_key_id": "key_1",
        "server": "demo",
        "tool": "echo",
        "args_digest": "d",
        "args": {"text": "hi"},
        "justification": "because <b>",
        "policy_version": 1,
        "workflow": "ops",
        "created_at": AT,
    }
    return ApprovalRequest(**(base | fields))  # type: ignore[arg-type]


def test_pending_message_has_details_and_buttons_naming_the_request() -> None:
    blocks = pending_blocks(_request(expires_at=AT), mentions="<@U1>")
    buttons = blocks[-1]["elements"]
    assert [APPROVE_ACTION + "apr_1", DENY_ACTION + "apr_1"] == [b["action_id"] for b in buttons]
    assert {"acc_1"} == {b["value"] for b in buttons}
    text = json.dumps(blocks)
    for shown in ("echo", "demo", "key_1", "2026-11-24 06:00:00 UTC", "<@U1>", "because &lt;b&gt;"):
        assert shown in text


def test_long_arguments_are_cut_to_fit_a_block_without_breaking_an_entity() -> None:
    text = arguments_text({"a": "<&>" * 5000})
    assert len("*Arguments*\n" + text) <= 3000
    assert text.startswith("```")
    assert text.endswith("… (truncated)```")
    body = text.removeprefix("```").removesuffix("\n… (truncated)```")
    assert body.count("&") == body.count(";")
    for block in pending_blocks(_request(args={"a": "x" * 10000})):
        if "text" in block and block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000


def test_settled_message_says_who_and_has_no_buttons() -> None:
    decided = _request(
        status=ApprovalStatus.DENIED, decided_at=AT, decided_by="u1", comment="not now"
    )
    blocks = settled_blocks(decided, "ada@example.com")
    assert all(b["type"] != "actions" for b in blocks)
    assert "*denied* by ada@example.com at 2026-11-24 06:00:00 UTC: not now" in json.dumps(blocks)
