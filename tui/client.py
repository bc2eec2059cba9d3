"""The dashboard's one REST client.

Every failure a screen can meet comes out as :class:`ServerError` (a title and a message a
person can act on): HTTP errors are translated from the server's error envelope
(``{"error": {"type": ..., "message": ...}}``), transport errors name the URL, and an answer
that does not decode says so. Screens show it in the one error modal; no traceback reaches the
terminal. Records are decoded into the hub's own Structs, so the TUI shares the server's types.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from hub.errors import Problem
from hub.policy_versions import ApplyResult
from hub.records import ApprovalRequest, ApprovalVote, AuditEvent, User

T = TypeVar("T")

TIMEOUT = httpx.Timeout(30.0, connect=5.0)

# What the server says for each status when its answer carries no envelope.
_TITLES = {
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    409: "Already decided",
    413: "Too large",
    422: "Refused",
}


class ServerError(Exception):
    """Something the server (or the way to it) refused or failed; shown in the error modal."""

    def __init__(
        self,
        message: str,
        *,
        title: str = "Server error",
        status: int = 0,
        kind: str = "",
        problems: tuple[Problem, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.title = title
        self.status = status
        self.kind = kind  # the envelope's type (PolicyTooLargeError...), if it had one
        self.problems = problems  # an invalid policy's problems (PolicyError and its kinds)


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

    # -- the Servers screen ---------------------------------------------------------------

    async def servers(self) -> list[UpstreamServer]:
        """The upstream MCP servers with their health on the replica that answers."""
        return await self._call("GET", "/api/v1/servers/", list[UpstreamServer])

    async def server_tools(self, server: str) -> list[UpstreamTool]:
        path = f"/api/v1/servers/{_segment(server)}/tools"
        return await self._call("GET", path, list[UpstreamTool])

    async def refresh_server(self, server: str) -> list[UpstreamTool]:
        """Ask the upstream for its tools now (admin): new ones are pinned, changed ones blocked."""
        return await self._call(
            "POST", f"/api/v1/servers/{_segment(server)}/refresh", list[UpstreamTool]
        )

    async def accept_tool(self, server: str, tool: str) -> AcceptedTool:
        """Pin the tool's current definition (admin); answers the diff that was accepted."""
        path = f"/api/v1/servers/{_segment(server)}/tools/{_segment(tool)}/accept"
        return await self._call("POST", path, AcceptedTool)

    # -- the Devices screen ----------------------------------------------------------------

    async def users(self) -> list[User]:
        """The account's people (admin keys only): whom a phone can be paired for."""
        return await self._call("GET", "/api/v1/users/", list[User])

    async def devices(self) -> list[DeviceInfo]:
        """Paired devices, oldest first (admin keys only)."""
        return await self._call("GET", "/api/v1/devices/", list[DeviceInfo])

    async def start_pairing(self, user: str, expires_in_seconds: int = 600) -> PairingInfo:
        """A one-time pairing token for ``user`` (an email or user id) and its QR payload."""
        return await self._call(
            "POST",
            "/api/v1/pairing-tokens/",
            PairingInfo,
            json={"user": user, "expires_in_seconds": expires_in_seconds},
        )

    async def revoke_device(self, device_id: str) -> DeviceInfo:
        return await self._call("POST", f"/api/v1/devices/{device_id}/revoke", DeviceInfo)

    # -- the Usage screen --------------------------------------------------------------------

    async def usage_summary(self, group_by: str, since: datetime) -> UsageSummary:
        """The account's gateway spend since ``since``, grouped by ``model``, ``flow`` or
        ``day``."""
        return await self._call(
            "GET",
            "/api/v1/gateway/usage/summary",
            UsageSummary,
            params={"group_by": group_by, "since": since.isoformat()},
        )

    async def budgets(self) -> list[BudgetStatus]:
        """The account's budgets with their spend and state."""
        shape: Any = list[BudgetStatus] | BudgetList
        listed: list[BudgetStatus] | BudgetList = await self._call("GET", "/api/v1/budgets", shape)
        return listed if isinstance(listed, list) else listed.budgets

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
        """The server's verdict. A policy over a size limit is a 413 there (it refuses to read
        it), but to the editor it is a problem like any other, shown under the field."""
        try:
            return await self._call(
                "POST", "/api/v1/policies/validate", PolicyValidation, json={"source": source}
            )
        except ServerError as exc:
            if exc.kind != "PolicyTooLargeError":
                raise
            return PolicyValidation(valid=False, problems=list(exc.problems))

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
        problems = tuple(msgspec.convert(body.get("problems", []), list[Problem]))
    except (ValueError, KeyError, TypeError, AttributeError, msgspec.ValidationError):
        text = response.text.strip()[:200] or response.reason_phrase
        return ServerError(f"HTTP {status}: {text}", title=title, status=status)
    return ServerError(
        f"{message} (HTTP {status}, {kind})",
        title=title,
        status=status,
        kind=kind,
        problems=problems,
    )


def _segment(name: str) -> str:
    """A name as one URL path segment (a server or tool name with ``/`` stays one segment)."""
    return quote(name, safe="")


# -- the Servers screen's records (the server's ``/api/v1/servers`` views) -------------------


class UpstreamHealth(msgspec.Struct, frozen=True, kw_only=True):
    state: str  # ready | connecting | failed | stopped
    last_error: str | None = None
    restarts: int = 0


class UpstreamServer(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    transport: str
    source: str = ""  # policy | api
    health: UpstreamHealth | None = None  # None: not connected from this replica


class UpstreamTool(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str = ""
    blocked: bool = False  # its definition changed since it was pinned: calls are refused
    definition_hash: str = ""
    pinned_hash: str = ""
    updated_at: datetime | None = None
    diff: str = ""  # when blocked: pinned definition -> served definition, unified diff


class AcceptedTool(msgspec.Struct, frozen=True, kw_only=True):
    tool: UpstreamTool
    diff: str


# -- the Devices screen's records -------------------------------------------------------------


class DeviceInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A paired device as the server shows it: never its credential or push token."""

    id: str
    user_id: str
    name: str
    platform: str
    has_push_token: bool
    created_at: datetime
    revoked_at: datetime | None = None
    status: str


class PairingInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A new pairing token; ``uri`` is the QR payload (the server's SVG is not kept)."""

    id: str
    user_id: str
    expires_at: datetime
    token: str
    uri: str


# -- the Usage screen's records (the ledger's usage summary and budgets views) -----------------


class UsageGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Spend of one group (a model, a flow or a day), or the total (``key`` None). A flow
    group's ``key`` is None (or empty) for usage outside any flow."""

    key: str | None = None
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal = Decimal(0)


class UsageSummary(msgspec.Struct, frozen=True, kw_only=True):
    groups: list[UsageGroup] = []
    total: UsageGroup = UsageGroup()


class BudgetStatus(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    scope: str  # account | flow | api_key
    scope_id: str = ""
    period: str  # day | month | total
    soft_limit: Decimal | None = None
    hard_limit: Decimal | None = None
    spent: Decimal = Decimal(0)
    reserved: Decimal = Decimal(0)
    resets_at: datetime | None = None
    state: str = "ok"  # ok | warning | exceeded | awaiting_approval


class BudgetList(msgspec.Struct, frozen=True, kw_only=True):
    """``{"budgets": [...]}``; the server may also answer the bare list."""

    budgets: list[BudgetStatus] = []
