"""A tool call's outcome (hub/tool_calls) as the MCP ``CallToolResult`` an agent gets.

    Forwarded ─▶ the upstream's result, its bytes unchanged
    Refused   ─▶ ``isError``, the message; its decision details in ``_meta["ai.preloop/decision"]``
    Failed    ─▶ ``isError``: the upstream server failed, naming it
    Held      ─▶ the approval id and how to poll for it, as ``structuredContent`` and in
                 ``_meta`` (a tool with an output schema gets it unstructured: _held.py)
    Waiting   ─▶ pending or running, likewise

The core decides and words the refusals; the wire shape lives here only.
"""

from __future__ import annotations

from typing import Any

from hub.tool_calls import (
    STATUS_TOOL,
    Failed,
    Forwarded,
    Held,
    Outcome,
    Refused,
    Waiting,
)
from hub.tool_results import ToolResult

META_KEY = "ai.preloop/decision"


def error_result(text: str, **meta: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"content": [{"type": "text", "text": text}], "isError": True}
    if meta:
        result["_meta"] = {META_KEY: meta}
    return result


def info_result(text: str, structured: dict[str, Any]) -> dict[str, Any]:
    """Preloop's own answer about a call that has not run (held, pending, running): the
    details in ``structuredContent`` and, for clients that must drop it (a tool with an
    output schema, server/mcp/_held.py), in ``_meta`` too."""
    return {
        "content": [{"type": "text", "text": text}],
        "structuredContent": structured,
        "isError": False,
        "_meta": {META_KEY: structured},
    }


def answer(outcome: Outcome) -> dict[str, Any]:
    """The result for an outcome Preloop answers itself (every one but :class:`Forwarded`,
    whose result is the upstream's: :func:`result_of`)."""
    match outcome:
        case Forwarded(result=result):
            return result.as_dict()
        case Refused():
            meta = {
                key: value
                for key in ("decision", "rule", "approval_id", "status")
                if (value := getattr(outcome, key)) is not None
            }
            return error_result(outcome.message, **meta)
        case Failed(server=server, error=error):
            return error_result(f"The upstream server {server!r} failed: {error}")
        case Held():
            return info_result(
                f"This call needs {outcome.approver} approval (workflow {outcome.workflow!r}). "
                f"It was not run. Poll the {STATUS_TOOL} tool with approval_id "
                f"{outcome.approval_id!r}; once approved, that tool runs the call and returns "
                "its result.",
                {
                    "approval_id": outcome.approval_id,
                    "status": "pending",
                    "workflow": outcome.workflow,
                    "expires_at": (outcome.expires_at.isoformat() if outcome.expires_at else None),
                },
            )
        case Waiting(approval_id=approval_id, status="pending"):
            return info_result(
                f"Approval {approval_id} is still pending.",
                {"approval_id": approval_id, "status": "pending"},
            )
        case Waiting(approval_id=approval_id, status=status):
            return info_result(
                f"Approval {approval_id} was approved; the call is running.",
                {"approval_id": approval_id, "status": status},
            )


def result_of(outcome: Outcome) -> ToolResult:
    """The outcome as the result to send: an upstream's bytes pass through unchanged."""
    if isinstance(outcome, Forwarded):
        return outcome.result
    return ToolResult.of(answer(outcome))
