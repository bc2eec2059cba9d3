"""The policy schema: what a policy file may say, as frozen msgspec Structs.

Every Struct forbids unknown fields (a typo is an error, never silently ignored) and takes
keyword arguments only. The canonical export (``export.py``) leaves out every field that has
its default value, which keeps it short and stable. New fields must always get a default so
older policy files keep loading.

Field order is the order of the canonical export; change it only on purpose.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

__all__ = [
    "SUPPORTED_VERSIONS",
    "Action",
    "AiFallback",
    "AiReview",
    "ApprovalType",
    "ApprovalWorkflow",
    "Channel",
    "Defaults",
    "Escalation",
    "JustificationMode",
    "McpServerSpec",
    "Metadata",
    "OnError",
    "OnTimeout",
    "PolicyDocument",
    "Rule",
    "Tool",
    "ToolSource",
    "Transport",
]

SUPPORTED_VERSIONS: tuple[str, ...] = ("1.0",)

Name = Annotated[str, msgspec.Meta(min_length=1)]
Approver = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^(user|team|role):\S.*$",
        description="user:<email or id>, team:<name> or role:<role>",
    ),
]
PositiveInt = Annotated[int, msgspec.Meta(gt=0)]


class Action(StrEnum):
    """What a decision does with a tool call."""

    ALLOW = "allow"
    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


class OnError(StrEnum):
    """What an evaluation error gives. There is deliberately no ``allow``."""

    DENY = "deny"
    REQUIRE_APPROVAL = "require_approval"


class OnTimeout(StrEnum):
    """What happens to an approval request nobody decided in time."""

    DENY = "deny"
    EXPIRE = "expire"


class Transport(StrEnum):
    STDIO = "stdio"
    STREAMABLE_HTTP = "streamable-http"
    SSE = "sse"


class Channel(StrEnum):
    SLACK = "slack"
    MATTERMOST = "mattermost"
    EMAIL = "email"
    PUSH = "push"
    TUI = "tui"
    WEBSOCKET = "websocket"


class ToolSource(StrEnum):
    """Where a tool lives: on an upstream MCP server (``mcp``) or in Preloop itself
    (``builtin``: the built-in tools, hub/builtin_tools). An entry matches only calls of its
    own source (docs/decisions/0089)."""

    MCP = "mcp"
    BUILTIN = "builtin"


class JustificationMode(StrEnum):
    """Whether the agent must (``required``) or may (``optional``) explain a call."""

    NONE = "none"
    OPTIONAL = "optional"
    REQUIRED = "required"


class _Spec(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """Base of every policy Struct: strict, immutable, defaults omitted on export."""


class Metadata(_Spec, frozen=True, kw_only=True):
    name: Name
    description: str = ""
    tags: tuple[str, ...] = ()


class Defaults(_Spec, frozen=True, kw_only=True):
    """Policy-wide fallbacks.

    ``action`` applies to a listed tool when none of its rules match (and the tool has no
    ``action`` of its own); ``unknown_tools`` applies to a tool the policy does not list;
    ``on_error`` applies when a rule cannot be evaluated. ``unknown_tools`` defaults to
    ``deny``: see docs/decisions/0001-unknown-tools-default.md.
    """

    action: Action = Action.ALLOW
    unknown_tools: Action = Action.DENY
    approval_workflow: str | None = None
    on_error: OnError = OnError.DENY


class McpServerSpec(_Spec, frozen=True, kw_only=True):
    """An upstream MCP server. Values may hold ``${NAME}`` references, kept literal here and
    resolved only through an allow-list by :func:`hub.policy.servers.resolve_server_env`."""

    name: Name
    transport: Transport
    description: str = ""
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = {}
    url: str | None = None
    headers: dict[str, str] = {}


class ApprovalType(StrEnum):
    """Who reviews a held call first: people (``human``) or a model (``ai``)."""

    HUMAN = "human"
    AI = "ai"


class AiFallback(StrEnum):
    """What an ``ai`` workflow does when the model is unsure, below the threshold, or cannot
    be asked: ``escalate`` asks the workflow's human approvers on its channels as usual."""

    ESCALATE = "escalate"
    DENY = "deny"
    APPROVE = "approve"


class AiReview(_Spec, frozen=True, kw_only=True):
    """The model reviewer of an ``approval_type: ai`` workflow (hub/ai_approval.py). The
    model is asked through the model gateway, so its usage is accounted and budgeted."""

    model: Name
    confidence_threshold: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.8
    fallback: AiFallback = AiFallback.ESCALATE
    instructions: str = ""  # extra policy text from the policy author, for the reviewer
    max_tokens: PositiveInt | None = None


class Escalation(_Spec, frozen=True, kw_only=True):
    after_seconds: PositiveInt
    approvers: Annotated[tuple[Approver, ...], msgspec.Meta(min_length=1)]


class ApprovalWorkflow(_Spec, frozen=True, kw_only=True):
    name: Name
    description: str = ""
    timeout_seconds: PositiveInt = 600
    required_approvals: Annotated[int, msgspec.Meta(ge=1)] = 1
    async_approval: bool = False
    approvers: tuple[Approver, ...] = ()
    channels: tuple[Channel, ...] = ()
    # Per-channel settings of this workflow, e.g. {slack: {channel: "#deploys"},
    # mattermost: {channel: "<channel id>"}}; each channel documents the keys it reads.
    channel_settings: dict[Channel, dict[str, str]] = {}
    escalation: Escalation | None = None
    on_timeout: OnTimeout = OnTimeout.DENY
    approval_type: ApprovalType = ApprovalType.HUMAN
    ai: AiReview | None = None  # required when approval_type is ai


class Rule(_Spec, frozen=True, kw_only=True):
    """One ordered access rule of a tool. Without ``expression`` it always matches.

    ``enabled: false`` switches a rule off without deleting it: the engine skips it (the next
    rule is checked), but it stays in the file, is still validated and is exported, and it
    keeps its position (so the ids and positions of the other rules do not move)."""

    id: Name | None = None
    expression: str | None = None
    action: Action
    description: str = ""
    message: str | None = None
    approval_workflow: str | None = None
    enabled: bool = True


class Tool(_Spec, frozen=True, kw_only=True):
    """A tool the policy governs. Without ``server`` it matches that name on any upstream
    server; with ``source: builtin`` it is one of Preloop's built-in tools (no server)."""

    name: Name
    description: str = ""
    source: ToolSource = ToolSource.MCP
    server: str | None = None
    approval_workflow: str | None = None
    justification: JustificationMode = JustificationMode.NONE
    conditions: tuple[Rule, ...] = ()
    action: Action | None = None

    @property
    def label(self) -> str:
        """How decisions and messages name this tool: ``name`` or ``server/name``."""
        return f"{self.server}/{self.name}" if self.server else self.name


class PolicyDocument(_Spec, frozen=True, kw_only=True):
    version: str
    metadata: Metadata
    defaults: Defaults | None = None
    mcp_servers: tuple[McpServerSpec, ...] = ()
    approval_workflows: tuple[ApprovalWorkflow, ...] = ()
    tools: tuple[Tool, ...] = ()

    @property
    def effective_defaults(self) -> Defaults:
        return self.defaults if self.defaults is not None else Defaults()
