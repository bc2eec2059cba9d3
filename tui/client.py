"""The dashboard's one REST client.

Every failure a screen can meet comes out as :class:`ServerError` (a title and a message a
person can act on): HTTP errors are translated from the server's error envelope
(``{"error": {"type": ..., "message": ...}}``), transport errors name the URL, and an answer
that does not decode says so. Screens show it in the one error modal; no traceback reaches the
terminal. Records are decoded into the hub's own Structs, so the TUI shares the server's types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from hub.records import ApprovalRequest, ApprovalVote, AuditEvent

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

    # -- the Audit screen ------------------------------------------------------------------

    async def audit_page(self, params: Mapping[str, str | int]) -> list[AuditEvent]:
        """One page of ``GET /api/v1/audit/`` (filters and keyset cursor in ``params``)."""
        return await self._call("GET", "/api/v1/audit/", list[AuditEvent], params=dict(params))

    async def export_audit(
        self, params: Mapping[str, str | int], into: Path, progress: Callable[[int], None]
    ) -> int:
        """Stream ``GET /api/v1/audit/export`` (narrowed by ``params``) into the file ``into``,
        calling ``progress`` with the count of events written so far; returns the count. The
        file is written to a temporary name and renamed at the end, so a failed export leaves
        no partial file under the name asked for."""
        partial = into.with_name(into.name + ".partial")
        written = 0
        try:
            async with self._http.stream(
                "GET", "/api/v1/audit/export", params=dict(params)
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_of(response)
                with partial.open("wb") as out:
                    async for line in response.aiter_lines():
                        if line:
                            out.write(line.encode() + b"\n")
                            written += 1
                            if written % 1000 == 0:
                                progress(written)
            partial.replace(into)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise ServerError(
                f"Cannot reach the Preloop server at {self.url}: {exc or type(exc).__name__}.",
                title="Server unreachable",
            ) from exc
        except OSError as exc:
            partial.unlink(missing_ok=True)
            message = f"Cannot write {into}: {exc.strerror or exc}."
            raise ServerError(message, title="Export failed") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        progress(written)
        return written


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
