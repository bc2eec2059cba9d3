"""Wire shapes of gateway content capture and runtime sessions (``/api/v1/gateway/capture``,
``/api/v1/gateway/interactions``, ``/api/v1/runtime/sessions``). Money is a decimal string of
US dollars. ``request``, ``response`` and ``snippet`` are present only for admins and
approvers (``null`` for viewers)."""

from __future__ import annotations

from datetime import datetime

import msgspec


class CaptureRuleView(msgspec.Struct, frozen=True, kw_only=True):
    scope: str  # account | flow | api_key
    subject: str  # the flow's name or the API key's id; "" for the account
    mode: str  # off | metadata | redacted_preview | full
    max_bytes: int
    retention_days: int
    updated_at: datetime
    updated_by: str


class CaptureRules(msgspec.Struct, frozen=True, kw_only=True):
    rules: list[CaptureRuleView]


class RuntimeSessionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the flow execution's id, or the client's X-Preloop-Session-Id
    flow: str | None
    principal: str
    execution_id: str | None
    models: list[str]
    calls: int
    input_tokens: int
    output_tokens: int
    cost: str
    started_at: datetime
    last_at: datetime
    status: str  # active | ended


class RuntimeSessions(msgspec.Struct, frozen=True, kw_only=True):
    sessions: list[RuntimeSessionView]


class InteractionView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    created_at: datetime
    endpoint: str
    model: str
    status: int
    outcome: str
    input_tokens: int
    output_tokens: int
    cost: str
    latency_ms: float
    captured: str | None  # the capture mode it was kept under; null: not captured
    principal: str = ""
    flow: str | None = None
    session: str | None = None
    request: str | None = None
    response: str | None = None
    truncated: bool = False
    score: float | None = None  # searches only
    snippet: str | None = None  # searches only: matches marked [[like this]]


class RuntimeSessionDetail(msgspec.Struct, frozen=True, kw_only=True):
    session: RuntimeSessionView
    interactions: list[InteractionView]


class InteractionSearch(msgspec.Struct, frozen=True, kw_only=True):
    engine: str  # fts5 | tsvector | memory (full text); exact (similarity); list
    model: str | None  # the embedder identity of a similarity search
    interactions: list[InteractionView]
