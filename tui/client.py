"""The dashboard's one REST client.

Every failure a screen can meet comes out as :class:`ServerError` (a title and a message a
person can act on): HTTP errors are translated from the server's error envelope
(``{"error": {"type": ..., "message": ...}}``), transport errors name the URL, and an answer
that does not decode says so. Screens show it in the one error modal; no traceback reaches the
terminal. Records are decoded into the hub's own Structs, so the TUI shares the server's types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import httpx
import msgspec

from hub.errors import Problem
from hub.policy_versions import ApplyResult
from hub.records import ApprovalRequest, ApprovalVote

T = TypeVar("T")

TIMEOUT = httpx.Timeout(30.0, connect=5.0)

# What the server says for each status when its answer carries no envelope.
_TITLES = {
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Already decided",
    422: "Refused",
}


class ServerError(Exception):
    """Something the server (or the way to it) refused or failed; shown in the error modal."""

    def __init__(self, message: str, *, title: str = "Server error", status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.title = title
        self.status = status


class Whoami(msgspec.Struct, frozen=True, kw_only=True):
    key_id: str
    role: str
    account_id: str = ""


class ApprovalDetail(msgspec.Struct, frozen=True, kw_only=True):
    request: ApprovalRequest
    votes: list[ApprovalVote]


class PolicyExport(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    source: str


class PolicyValidation(msgspec.Struct, frozen=True, kw_only=True):
    valid: bool
    name: str = ""
    tools: int = 0
    problems: list[Problem] = []


class PolicyDiff(msgspec.Struct, frozen=True, kw_only=True):
    changed: bool
    diff: str


class PolicyVersionSummary(msgspec.Struct, frozen=True, kw_only=True):
    version: int
    name: str
    digest: str
    created_at: datetime
    created_by: str
    comment: str
    active: bool


class PreloopClient:
    """REST calls the screens make, each an ``async`` method; one instance per app."""

    def __init__(
        self, url: str, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {api_key}"},
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def whoami(self) -> Whoami:
        return await self._call("GET", "/api/v1/whoami", Whoami)

    async def pending(self, limit: int = 200) -> list[ApprovalRequest]:
        """Pending requests, newest first."""
        return await self._call(
            "GET",
            "/api/v1/approvals/",
            list[ApprovalRequest],
            params={"status": "pending", "limit": limit},
        )

    async def approval(self, request_id: str) -> ApprovalDetail:
        return await self._call("GET", f"/api/v1/approvals/{request_id}", ApprovalDetail)

    async def approve(self, request_id: str, comment: str = "") -> ApprovalRequest:
        return await self._decide(request_id, "approve", comment)

    async def deny(self, request_id: str, comment: str = "") -> ApprovalRequest:
        return await self._decide(request_id, "deny", comment)

    async def _decide(self, request_id: str, choice: str, comment: str) -> ApprovalRequest:
        return await self._call(
            "POST",
            f"/api/v1/approvals/{request_id}/{choice}",
            ApprovalRequest,
            json={"comment": comment},
        )

    async def _call(self, method: str, path: str, into: type[T], **kwargs: Any) -> T:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerError(
                f"Cannot reach the Preloop server at {self.url}: {exc or type(exc).__name__}.",
                title="Server unreachable",
            ) from exc
        if response.status_code >= 400:
            raise error_of(response)
        try:
            return msgspec.json.decode(response.content, type=into)
        except msgspec.DecodeError as exc:
            raise ServerError(
                f"The server's answer to {method} {path} was not understood: {exc}.",
                title="Unexpected answer",
                status=response.status_code,
            ) from exc

    # -- the Policies screen ---------------------------------------------------------------

    async def export_policy(self) -> PolicyExport:
        """The active policy as canonical YAML, with its version."""
        return await self._call("GET", "/api/v1/policies/export", PolicyExport)

    async def validate_policy(self, source: str) -> PolicyValidation:
        return await self._call(
            "POST", "/api/v1/policies/validate", PolicyValidation, json={"source": source}
        )

    async def diff_policy(self, source: str) -> PolicyDiff:
        return await self._call(
            "POST", "/api/v1/policies/diff", PolicyDiff, json={"source": source}
        )

    async def apply_policy(self, source: str, comment: str = "") -> ApplyResult:
        return await self._call(
            "POST",
            "/api/v1/policies/apply",
            ApplyResult,
            json={"source": source, "comment": comment},
        )

    async def policy_versions(self) -> list[PolicyVersionSummary]:
        """Every applied version, newest first."""
        return await self._call("GET", "/api/v1/policies/versions", list[PolicyVersionSummary])

    async def rollback_policy(self, version: int) -> ApplyResult:
        return await self._call(
            "POST", "/api/v1/policies/rollback", ApplyResult, json={"version": version}
        )


def error_of(response: httpx.Response) -> ServerError:
    """The :class:`ServerError` an HTTP error response stands for."""
    status = response.status_code
    title = _TITLES.get(status, "Server error")
    try:
        body = response.json()["error"]
        kind, message = str(body["type"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ServerError(f"HTTP {status}: {text}", title=title, status=status)
    return ServerError(f"{message} (HTTP {status}, {kind})", title=title, status=status)
