"""What the fakes of GitHub, GitLab and Jira share: the raw ASGI plumbing, the request log a
test asserts on, a clock that moves one second per write (so ``updated_at`` orders writes
deterministically), switchable rate-limit answers and 403s (``limit``, ``forbid``).

A fake subclasses ``FakeTracker`` and implements ``handle(request) -> Answer``; it is served
on 127.0.0.1 by ``tests/integration/conftest.py``'s ``serve_asgi``. Every request is logged
(method, path, query, headers, decoded body) before it is answered, rate-limited or not.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, unquote

from tests.integration.fakes import read_body

START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)


@dataclass
class Request:
    method: str
    path: str  # decoded
    raw_path: str  # as sent (GitLab's URL-encoded project paths stay encoded here)
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any  # decoded JSON, or the form as a dict, or None
    base_url: str  # scheme://host of the request, for Link headers

    def segments(self) -> list[str]:
        """The raw path split on "/", each segment percent-decoded once."""
        return [unquote(part) for part in self.raw_path.split("/") if part]


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # JSON-encoded unless bytes or str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RateLimit:
    """Answer the next ``times`` requests with a rate-limit refusal. ``style``: "429" (429 with
    Retry-After), "primary" (GitHub's 403 with x-ratelimit-remaining 0 and x-ratelimit-reset),
    "secondary" (GitHub's 403 secondary limit with Retry-After)."""

    times: int
    retry_after: int = 1
    style: str = "429"


class FakeTracker:
    name = "tracker"

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.now = START
        self.rate_limit: RateLimit | None = None
        self.rate_limited = 0  # requests answered with a rate-limit refusal
        self.forbidden: list[tuple[str, str]] = []  # (method, path suffix) answered 403
        self._lock = threading.Lock()

    # --- seeding helpers -------------------------------------------------------------------
    def tick(self) -> datetime:
        """The fake's clock, moved one second on."""
        self.now += timedelta(seconds=1)
        return self.now

    def forbid(self, method: str, suffix: str) -> None:
        """Answer ``method`` requests whose path ends with ``suffix`` with the tracker's 403
        (a token without the scope or role for it)."""
        self.forbidden.append((method, suffix))

    def limit(self, times: int = 1, *, retry_after: int = 1, style: str = "429") -> None:
        self.rate_limit = RateLimit(times=times, retry_after=retry_after, style=style)

    def requests_to(self, method: str, suffix: str) -> list[Request]:
        """Logged requests of ``method`` whose decoded path ends with ``suffix``."""
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # --- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        raw = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = Request(
            method=scope["method"],
            path=scope["path"],
            raw_path=(scope.get("raw_path") or scope["path"].encode()).decode().split("?")[0],
            query=dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True)),
            headers=headers,
            body=_decode(raw, headers.get("content-type", "")),
            base_url=f"{scope.get('scheme', 'http')}://{headers.get('host', '127.0.0.1')}",
        )
        with self._lock:
            self.requests.append(request)
            answer = self._limited() or self._forbidden(request) or self.handle(request)
        await _send(send, answer)

    def _limited(self) -> Answer | None:
        limit = self.rate_limit
        if limit is None or limit.times <= 0:
            return None
        limit.times -= 1
        self.rate_limited += 1
        return self.rate_limit_answer(limit)

    def _forbidden(self, request: Request) -> Answer | None:
        for method, suffix in self.forbidden:
            if request.method == method and request.path.endswith(suffix):
                return self.forbidden_answer()
        return None

    def forbidden_answer(self) -> Answer:
        return Answer(403, {"message": "403 Forbidden"})

    def rate_limit_answer(self, limit: RateLimit) -> Answer:
        return Answer(
            429,
            {"message": "Too Many Requests"},
            {"retry-after": str(limit.retry_after)},
        )

    def handle(self, request: Request) -> Answer:
        raise NotImplementedError


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type or raw[:1] in (b"{", b"["):
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")
    if "x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    return raw.decode(errors="replace")


async def _send(send: Any, answer: Answer) -> None:
    headers = dict(answer.headers)
    if isinstance(answer.body, bytes):
        payload = answer.body
    elif isinstance(answer.body, str):
        payload = answer.body.encode()
        headers.setdefault("content-type", "text/plain; charset=utf-8")
    elif answer.body is None:
        payload = b""
    else:
        payload = json.dumps(answer.body).encode()
        headers.setdefault("content-type", "application/json; charset=utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def iso(moment: datetime) -> str:
    """GitHub's and GitLab's timestamps: ``2026-01-05T09:00:01Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
