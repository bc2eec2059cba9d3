"""A fixed scene for the Sessions screens: runtime sessions, one session's timeline and the
search's matches served through httpx's mock transport (the REST seam) in the shapes of
``GET /api/v1/runtime/sessions``, ``/runtime/sessions/{id}`` and ``/gateway/interactions``,
with the frozen clock of :mod:`tests.tui.scenes`. ``role`` decides what the server gives:
content for an approver, metadata only for a viewer (and a 403 for a viewer's search)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx

from hub.api_client import ApiClient
from tests.tui import scenes
from tui.app import PreloopApp


def at(minutes: float) -> str:
    return (scenes.NOW + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def session(sid: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "flow": None,
        "principal": "ada@example.com",
        "execution_id": None,
        "models": ["gpt-4o-mini"],
        "calls": 1,
        "input_tokens": 100,
        "output_tokens": 20,
        "cost": "0.000150",
        "started_at": at(-30),
        "last_at": at(-30),
        "status": "ended",
        **extra,
    }


SESSIONS = [
    session("fx_7c1e", flow="nightly-triage", principal="flow:nightly-triage",
            execution_id="fx_7c1e", models=["claude-sonnet-4-5", "gpt-4o-mini"], calls=14,
            input_tokens=48_210, output_tokens=6_304, cost="0.237410", started_at=at(-12),
            last_at=at(-0.75), status="active"),
    session("cli-ada-0931", principal="ada@example.com", models=["gpt-4o"], calls=3,
            input_tokens=2_900, output_tokens=610, cost="0.013350", started_at=at(-50),
            last_at=at(-41)),
    session("fx_6b02", flow="release-notes", principal="flow:release-notes",
            execution_id="fx_6b02", calls=2, cost="0.000410", started_at=at(-60 * 26),
            last_at=at(-60 * 25.5)),
]  # fmt: skip

REQUEST = (
    '{"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Summarise '
    'issue #412: the refund policy page shows the old 14-day window."}]}'
)
RESPONSE = "The refund policy page still says 14 days; the policy changed to 30 days in May."


def interaction(iid: str, minutes: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": iid,
        "created_at": at(minutes),
        "endpoint": "openai.chat",
        "model": "gpt-4o-mini",
        "status": 200,
        "outcome": "ok",
        "input_tokens": 1_200,
        "output_tokens": 180,
        "cost": "0.000288",
        "latency_ms": 812.4,
        "captured": "full",
        "session": "fx_7c1e",
        "flow": "nightly-triage",
        "principal": "flow:nightly-triage",
        **extra,
    }


TIMELINE = [
    interaction("int_01", -12, request=REQUEST, response=RESPONSE, model="claude-sonnet-4-5",
                endpoint="anthropic.messages", input_tokens=3_400, output_tokens=420,
                cost="0.016500", latency_ms=2_310.0),
    interaction("int_02", -6, request='{"messages": [{"role": "user", "content": "label it"}]}',
                response="bug, billing"),
    interaction("int_03", -0.75, status=502, outcome="error", captured="metadata",
                output_tokens=0, cost="0", latency_ms=30_001.0),
]  # fmt: skip

HITS = [
    interaction("int_01", -12, model="claude-sonnet-4-5", endpoint="anthropic.messages",
                score=0.912, snippet="Summarise issue #412: the [[refund]] [[policy]] "
                "page shows the old 14-day window.", request=REQUEST, response=RESPONSE),
    interaction("int_44", -60 * 3, session="cli-ada-0931", flow=None,
                principal="ada@example.com", model="gpt-4o", score=0.407,
                snippet="…asked whether the [[refund]] applies to annual plans…"),
]  # fmt: skip

CONTENT = ("request", "response", "snippet")


def _metadata_only(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key not in CONTENT}


class Server:
    """The mock transport's handler; keeps the queries it was asked. ``sessions`` and
    ``timeline`` may be replaced while the app runs (what changed on the server)."""

    def __init__(self, role: str = "approver") -> None:
        self.role = role
        self.sessions: list[dict[str, Any]] = list(SESSIONS)
        self.timeline: list[dict[str, Any]] = list(TIMELINE)
        self.hits: list[dict[str, Any]] = list(HITS)
        self.asked: list[tuple[str, dict[str, str]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, params = request.url.path, dict(request.url.params)
        content = self.role in ("admin", "approver")
        if path == "/api/v1/whoami":
            return httpx.Response(200, json={"key_id": "b0b0b0b0b0b0b0b0", "role": self.role})
        if path == "/api/v1/runtime/sessions":
            self.asked.append((path, params))
            status = params.get("status", "all")
            listed = [s for s in self.sessions if status in ("all", s["status"])]
            return httpx.Response(200, json={"sessions": listed})
        if path.startswith("/api/v1/runtime/sessions/"):
            self.asked.append((path, params))
            sid = path.rsplit("/", 1)[1]
            found = next((s for s in self.sessions if s["id"] == sid), None)
            if found is None:
                return _error(404, "NotFoundError", f"no runtime session {sid!r}")
            calls = [c for c in self.timeline if c["session"] == sid]
            if not content:
                calls = [_metadata_only(c) for c in calls]
            return httpx.Response(200, json={"session": found, "interactions": calls})
        if path == "/api/v1/gateway/interactions":
            self.asked.append((path, params))
            if not content:
                return _error(403, "PermissionDeniedError",
                              "Only admins and approvers may search captured content.")  # fmt: skip
            model = "local:hashing-v1@512" if params.get("search_type") == "similarity" else None
            engine = "sqlite-fts5" if model is None else "exact"
            return httpx.Response(
                200, json={"engine": engine, "model": model, "interactions": self.hits}
            )
        return scenes.handler(request)


def _error(status: int, kind: str, message: str) -> httpx.Response:
    return httpx.Response(status, content=json.dumps({"error": {"type": kind, "message": message}}))


def sessions_app(server: Server | None = None, theme: str = "textual-dark") -> PreloopApp:
    client = ApiClient(scenes.URL, "pl_test", transport=httpx.MockTransport(server or Server()))
    return PreloopApp(client, scenes.ConnectedFeed(), now=lambda: scenes.NOW, theme=theme)
