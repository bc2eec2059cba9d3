"""The HTTP seam the GitHub, GitLab and Jira adapters share: one ``httpx.AsyncClient`` per
tracker client, timeouts, a User-Agent, rate limits and the translation of every failure into
``hub.errors.TrackerError``, once, here.

    request ──▶ tracker ──▶ 2xx/304 ─────────────────────────────▶ the response
                        ├─▶ 429, or 403 with x-ratelimit-remaining: 0 or a "secondary rate
                        │   limit": wait what Retry-After / x-ratelimit-reset /
                        │   RateLimit-Reset says and ask again (``RetryPolicy``: at most
                        │   ``attempts`` retries, each wait at most ``max_wait`` seconds), else
                        │   TrackerError(status, retry_after)
                        ├─▶ 502 / 503 / 504 to a GET: asked again after 1, 2, 4 s (``attempts``)
                        ├─▶ 401 / 403 / 404 / 410 / 400 / 422 / 5xx ──▶ TrackerError (status)
                        └─▶ unreachable, timed out ──▶ TrackerError (status None)

Every message names the tracker kind and its host, the project, and what to do. A rejected
token is named by its custody reference, never by its value; the token is scrubbed from any
text a tracker echoes back. Nothing here logs a header.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from hub.errors import TrackerError
from hub.trackers.records import TrackerKind

USER_AGENT = "Preloop-tracker-sync/0.1 (+https://github.com/preloop/preloop)"
LABELS = {TrackerKind.GITHUB: "GitHub", TrackerKind.GITLAB: "GitLab", TrackerKind.JIRA: "Jira"}
MAX_MESSAGE_CHARS = 300
DEFAULT_WAIT = 60.0  # a rate limit that says nothing of when it ends
TRANSIENT = (502, 503, 504)  # a GET is asked again after 1 s, 2 s, 4 s


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How rate limits are waited out: at most ``attempts`` retries of one request, each only
    when the tracker's wait is at most ``max_wait`` seconds. ``sleep`` and ``now`` (Unix time)
    are injectable so tests see the waits without waiting."""

    attempts: int = 3
    max_wait: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = _sleep
    now: Callable[[], float] = time.time


@dataclass
class TrackerHttp:
    kind: TrackerKind
    base_url: str  # the API root: https://api.github.com, https://host/api/v4, https://x/rest/api/3
    auth_headers: Mapping[str, str] = field(repr=False)  # holds the token: never shown
    token_ref: str
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from any message
    timeout: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.AsyncBaseTransport | None = None
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    @property
    def label(self) -> str:
        return f"{LABELS[self.kind]} at {self.host}"

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                headers={"User-Agent": USER_AGENT, **self.extra_headers, **self.auth_headers},
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                transport=self.transport,
                follow_redirects=False,
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def json(
        self,
        method: str,
        url: str,
        project: str,
        *,
        what: str = "",
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """The answer's JSON (``{}`` for an empty body), or ``TrackerError`` as :meth:`request`."""
        response = await self.request(
            method, url, project=project, what=what, json=json, params=params
        )
        return response.json() if response.content else {}

    async def request(
        self,
        method: str,
        url: str,
        *,
        project: str,
        what: str = "",
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The response (2xx or 304), or ``TrackerError``. ``what`` names the thing asked
        for in a 404's message ("issue 12"). ``url`` is relative to the API root, or a full
        URL on the same host (a ``Link`` header's next page)."""
        if url.startswith(("http://", "https://")) and urlsplit(url).netloc != self.host:
            raise TrackerError(
                f"{self.label} pointed a page of project {project} at another host "
                f"({urlsplit(url).netloc}); refusing to send the token there",
                tracker=self.kind.value,
                project=project,
            )
        retries = 0
        while True:
            try:
                response = await self.client().request(
                    method, url, params=params, json=json, headers=headers
                )
            except httpx.HTTPError as exc:
                raise self._error(
                    f"cannot be reached ({type(exc).__name__}: {exc}) while working on "
                    f"project {project}; check the base URL and the network, then try again",
                    project,
                    None,
                ) from exc
            if response.status_code < 400 or response.status_code == 304:
                return response
            wait = rate_limit_wait(response, self.retry.now())
            if wait is not None and retries < self.retry.attempts and wait <= self.retry.max_wait:
                retries += 1
                await self.retry.sleep(wait)
                continue
            if (
                method == "GET"
                and response.status_code in TRANSIENT
                and retries < (self.retry.attempts)
            ):  # a read is safe to ask again; a write might have happened
                retries += 1
                await self.retry.sleep(min(float(2 ** (retries - 1)), self.retry.max_wait))
                continue
            raise self.failure(response, project, what, wait)

    def failure(
        self, response: httpx.Response, project: str, what: str, wait: float | None
    ) -> TrackerError:
        status = response.status_code
        said = self._scrub(tracker_message(response))
        said_part = f": {said}" if said else ""
        thing = what or "resource"
        if wait is not None:
            kind = (
                "its API rate limit is exhausted"
                if status == 403 and response.headers.get("x-ratelimit-remaining") == "0"
                else "it rate-limited the requests"
            )
            return self._error(
                f"refused a request for project {project}: {kind}{said_part}; retry after "
                f"{wait:.0f} s (or slow the poll interval down)",
                project,
                status,
                retry_after=wait,
            )
        if status == 401:
            return self._error(
                f"rejected the token {self.token_ref} for project {project} (401{said_part}); "
                f"store a valid, unexpired token under {self.token_ref} and try again",
                project,
                status,
            )
        if status == 403:
            return self._error(
                f"refused permission for project {project} (403{said_part}); the token "
                f"{self.token_ref} lacks the scope or role for this, grant it and try again",
                project,
                status,
            )
        if status == 404 and what in ("repository", "project"):
            return self._error(
                f"found no {what} {project} (404{said_part}); check its name and that the "
                f"token {self.token_ref} can see it",
                project,
                status,
            )
        if status == 404:
            return self._error(
                f"found no {thing} in project {project} (404{said_part}); check the project "
                f"and number, and that the token {self.token_ref} can see the project",
                project,
                status,
            )
        if status == 410:
            return self._error(
                f"answered 410 Gone for project {project}{said_part}: the API endpoint was "
                "removed by the tracker; upgrade Preloop",
                project,
                status,
            )
        if status in (400, 409, 422):
            return self._error(
                f"refused the request for project {project} ({status}){said_part}",
                project,
                status,
            )
        return self._error(
            f"failed a request for project {project} ({status}{said_part}); try again later",
            project,
            status,
        )

    def _error(
        self, text: str, project: str, status: int | None, *, retry_after: float | None = None
    ) -> TrackerError:
        return TrackerError(
            self._scrub(f"{self.label} {text}"),
            tracker=self.kind.value,
            project=project,
            status=status,
            retry_after=retry_after,
        )

    def _scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait before asking again, when ``response`` is a rate-limit refusal (429;
    GitHub's 403 with ``x-ratelimit-remaining: 0`` or a secondary limit); else ``None``."""
    status = response.status_code
    headers = response.headers
    if status == 403:
        limited = headers.get("x-ratelimit-remaining") == "0" or (
            "retry-after" in headers or "rate limit" in tracker_message(response).lower()
        )
        if not limited:
            return None
    elif status != 429:
        return None
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _seconds(retry_after, now)
        if seconds is not None:
            return seconds
    for name in ("x-ratelimit-reset", "ratelimit-reset"):
        reset = headers.get(name)
        if reset and reset.strip().isdigit():
            value = int(reset)
            # epoch seconds (GitHub, GitLab); small numbers are already a delay (IETF draft)
            return max(0.0, float(value) - now) if value > 10**9 else float(value)
    return DEFAULT_WAIT


def _seconds(text: str, now: float) -> float | None:
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def tracker_message(response: httpx.Response) -> str:
    """What the tracker said was wrong, from any of GitHub's (``message``, ``errors``),
    GitLab's (``message`` as text, list or per-field dict; ``error``) and Jira's
    (``errorMessages``, ``errors``) error bodies; cut to a readable length."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:MAX_MESSAGE_CHARS]
    parts: list[str] = []
    if isinstance(body, dict):
        _collect(body.get("message"), parts)
        _collect(body.get("error"), parts)
        _collect(body.get("error_description"), parts)
        _collect(body.get("errorMessages"), parts)
        _collect(body.get("errors"), parts)
    else:
        _collect(body, parts)
    return "; ".join(dict.fromkeys(p for p in parts if p))[:MAX_MESSAGE_CHARS]


def _collect(value: Any, parts: list[str]) -> None:
    if value is None:
        return
    if isinstance(value, str):
        parts.append(value.strip())
    elif isinstance(value, list):
        for item in value:
            _collect(item, parts)
    elif isinstance(value, dict):
        if "message" in value:  # GitHub's {"resource", "field", "code", "message"}
            parts.append(str(value["message"]))
        elif "code" in value and "field" in value:
            parts.append(f"{value['field']} {value['code']}".replace("_", " "))
        else:  # GitLab's and Jira's {"field": ["problem"]} / {"field": "problem"}
            for name, problem in value.items():
                text = "; ".join(problem) if isinstance(problem, list) else str(problem)
                parts.append(f"{name}: {text}")


def parse_time(text: str) -> datetime:
    """A tracker's timestamp, timezone-aware: ``2026-01-05T09:00:01Z`` (GitHub),
    ``2026-01-05T09:00:01.123Z`` (GitLab), ``2026-01-05T09:00:01.123+0000`` (Jira)."""
    text = text.strip().replace("Z", "+00:00")
    if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":  # +0000 → +00:00
        text = f"{text[:-2]}:{text[-2:]}"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
