"""The tool-call pipeline: every tool call an agent makes, upstream or Preloop's own, goes
through :class:`ToolCalls` (hub/tool_calls/pipeline.py) and ends as one :data:`Outcome`
with one frozen :class:`ToolCallRecord` in the audit log (docs/decisions/0058)."""

from hub.tool_calls.holds import Gone, Progress
from hub.tool_calls.names import (
    JUSTIFICATION_ARG,
    KEY_ALLOW_LIST_RULE,
    KEY_ROLE_RULE,
    SEPARATOR,
    STATUS_TOOL,
    exposed_name,
    role_refusal,
    split_name,
)
from hub.tool_calls.outcomes import Failed, Forwarded, Held, Outcome, Reason, Refused, Waiting
from hub.tool_calls.pipeline import Pins, ServerNames, ToolCalls
from hub.tool_calls.records import ToolAttempt, ToolCallRecord
from hub.tool_calls.runs import BuiltinRunner, Upstream

__all__ = [
    "JUSTIFICATION_ARG",
    "KEY_ALLOW_LIST_RULE",
    "KEY_ROLE_RULE",
    "SEPARATOR",
    "STATUS_TOOL",
    "BuiltinRunner",
    "Failed",
    "Forwarded",
    "Gone",
    "Held",
    "Outcome",
    "Pins",
    "Progress",
    "Reason",
    "Refused",
    "ServerNames",
    "ToolAttempt",
    "ToolCallRecord",
    "ToolCalls",
    "Upstream",
    "Waiting",
    "exposed_name",
    "role_refusal",
    "split_name",
]
