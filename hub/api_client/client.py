"""``ApiClient``: one async method per REST route the CLI or the dashboard uses.

Answers decode into ``hub.wire`` types. Failures are the core's error tree: an HTTP error is
translated by :func:`~hub.api_client.errors.error_from_answer`, a server that cannot be reached
is a :class:`PreloopError` titled "Server unreachable" naming the URL, and an answer that does
not decode one titled "Unexpected answer". httpx is translated here and nowhere else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from hub.api_client.errors import error_from_answer
from hub.errors import PolicyTooLargeError, PreloopError, RateLimitedError
from hub.wire import (
    AcceptedTool,
    AccessTokenIssued,
    ApprovalDetail,
    ApprovalRequestView,
    AuditEventView,
    BudgetView,
    CaptureRules,
    CaptureRuleView,
    ChainReportView,
    ComplianceReport,
    ConnectionTest,
    DecisionView,
    DeviceView,
    DuplicateCandidates,
    DuplicatePairs,
    DuplicateResolved,
    ExecutionDetail,
    ExecutionStarted,
    InteractionSearch,
    IssueSearchResults,
    IssueView,
    KeyCreated,
    KeyView,
    PairingCreated,
    PasswordSet,
    PolicyApplied,
    PolicyDiff,
    PolicyExport,
    PolicyValidation,
    PolicyVersionSummary,
    PriceList,
    PriceView,
    ProviderView,
    RuntimeSessionDetail,
    RuntimeSessions,
    SecretRotated,
    SecretView,
    ServerView,
    SyncEvent,
    SyncReportView,
    TeamView,
    ToolView,
    TrackerCreated,
    TrackerSyncStatus,
    TrackerView,
    UsageSummary,
    UserView,
    Whoami,
)

T = TypeVar("T")
TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# a sync streams a line per page; one page (and its comments) may take a while to fetch
SYNC_TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=600.0)
Params = Mapping[str, Any]  # query parameters; None: not given


def segment(name: str) -> str:
    """A name as one URL path segment (a server or tool name with ``/`` stays one segment)."""
    return quote(name, safe="")


class ApiClient:
    """The REST API of one server with one key; ``async with`` closes it."""

    def __init__(
        self, url: str, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self._http = httpx.AsyncClient(
            base_url=self.url,
            timeout=TIMEOUT,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            transport=transport,
        )

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the seam: every request goes through here ------------------------------------------

    async def _call(self, method: str, path: str, into: type[T], **kwargs: Any) -> T:
        response = await self._send(method, path, **kwargs)
        return self._decode(response.content, into, method, path)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if "params" in kwargs:
            kwargs["params"] = _clean(kwargs["params"])
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            error = error_from_answer(
                response.status_code, response.content, response.reason_phrase
            )
            retry_after = response.headers.get("retry-after", "")
            if isinstance(error, RateLimitedError) and retry_after.isdigit():
                error.retry_after = max(1, int(retry_after))
            raise error
        return response

    def _unreachable(self, exc: Exception) -> PreloopError:
        return PreloopError(
            f"cannot reach the Preloop server at {self.url}: {exc or type(exc).__name__}. "
            "Is it running? Set PRELOOP_URL or run 'preloop login URL --key KEY'.",
            title="Server unreachable",
        )

    # -- who ------------------------------------------------------------------------------

    async def whoami(self) -> Whoami:
        return await self._call("GET", "/api/v1/whoami", Whoami)

    async def login(self, username: str, password: str) -> AccessTokenIssued:
        """An access token for a user's email and password (no key needed)."""
        body = {"username": username, "password": password}
        return await self._call("POST", "/api/v1/auth/token", AccessTokenIssued, json=body)

    async def logout(self) -> None:
        """Revoke the access token this client sends (an API key cannot be logged out)."""
        await self._send("DELETE", "/api/v1/auth/token")

    # -- approvals ----------------------------------------------------------------------------

    async def approvals(
        self, status: str | None = None, limit: int = 100
    ) -> list[ApprovalRequestView]:
        """Approval requests, newest first (``status="pending"``: the ones waiting)."""
        params = {"status": status, "limit": limit}
        shape = list[ApprovalRequestView]
        return await self._call("GET", "/api/v1/approvals/", shape, params=params)

    async def pending(self, limit: int = 200) -> list[ApprovalRequestView]:
        return await self.approvals("pending", limit)

    async def approval(self, request_id: str) -> ApprovalDetail:
        return await self._call("GET", f"/api/v1/approvals/{segment(request_id)}", ApprovalDetail)

    async def approve(self, request_id: str, comment: str = "") -> ApprovalRequestView:
        """Vote to approve; the request is approved once its quorum is reached."""
        return await self._decide(request_id, "approve", comment)

    async def deny(self, request_id: str, comment: str = "") -> ApprovalRequestView:
        return await self._decide(request_id, "deny", comment)

    async def _decide(self, request_id: str, choice: str, comment: str) -> ApprovalRequestView:
        path = f"/api/v1/approvals/{segment(request_id)}/{choice}"
        return await self._call("POST", path, ApprovalRequestView, json={"comment": comment})

    # -- policies -----------------------------------------------------------------------------

    async def validate_policy(self, source: str, filename: str = "<policy>") -> PolicyValidation:
        """The server's verdict. A policy over a size limit is a 413 there (it refuses to read
        it), but to a caller checking a draft it is a problem like any other."""
        body = {"source": source, "filename": filename}
        try:
            path = "/api/v1/policies/validate"
            return await self._call("POST", path, PolicyValidation, json=body)
        except PolicyTooLargeError as exc:
            return PolicyValidation(valid=False, problems=list(exc.problems))

    async def apply_policy(
        self, source: str, comment: str = "", *, filename: str = "<policy>", dry_run: bool = False
    ) -> PolicyApplied:
        body = {"source": source, "filename": filename, "dry_run": dry_run, "comment": comment}
        return await self._call("POST", "/api/v1/policies/apply", PolicyApplied, json=body)

    async def export_policy(self, version: int | None = None) -> PolicyExport:
        """The active policy (or ``version``) as canonical YAML, with its version."""
        params = {"version": version}
        return await self._call("GET", "/api/v1/policies/export", PolicyExport, params=params)

    async def diff_policy(self, source: str, filename: str = "<policy>") -> PolicyDiff:
        body = {"source": source, "filename": filename}
        return await self._call("POST", "/api/v1/policies/diff", PolicyDiff, json=body)

    async def policy_versions(self) -> list[PolicyVersionSummary]:
        """Every applied version, newest first."""
        return await self._call("GET", "/api/v1/policies/versions", list[PolicyVersionSummary])

    async def rollback_policy(self, version: int) -> PolicyApplied:
        body = {"version": version}
        return await self._call("POST", "/api/v1/policies/rollback", PolicyApplied, json=body)

    async def evaluate_policy(self, call: Mapping[str, Any]) -> DecisionView:
        """Decide a hypothetical call (``tool``, ``server``, ``args``, ``principal``...)."""
        return await self._call("POST", "/api/v1/policies/evaluate", DecisionView, json=call)

    # -- audit --------------------------------------------------------------------------------

    async def audit_page(self, params: Params) -> list[AuditEventView]:
        """One page of ``GET /api/v1/audit/`` (filters and keyset cursor in ``params``)."""
        return await self._call("GET", "/api/v1/audit/", list[AuditEventView], params=params)

    async def verify_audit(self) -> ChainReportView:
        return await self._call("GET", "/api/v1/audit/verify", ChainReportView)

    async def audit_lines(self, params: Params | None = None) -> AsyncIterator[str]:
        """The export (``GET /api/v1/audit/export``), oldest first: one JSON event per line,
        as the server wrote it (with its hashes, for offline checks)."""
        try:
            async with self._http.stream(
                "GET", "/api/v1/audit/export", params=_clean(params or {})
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise error_from_answer(response.status_code, body, response.reason_phrase)
                async for line in response.aiter_lines():
                    if line:
                        yield line
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    async def export_audit(
        self, params: Params, into: Path, progress: Callable[[int], None] = lambda _: None
    ) -> int:
        """Write the export (narrowed by ``params``) to the file ``into``, calling ``progress``
        with the count of events written so far; returns the count. The file is written under
        a temporary name and renamed at the end: a failed export leaves no partial file under
        the name asked for."""
        partial = into.with_name(into.name + ".partial")
        written = 0
        try:
            with partial.open("wb") as out:
                async for line in self.audit_lines(params):
                    out.write(line.encode() + b"\n")
                    written += 1
                    if written % 1000 == 0:
                        progress(written)
            partial.replace(into)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            message = f"Cannot write {into}: {exc.strerror or exc}."
            raise PreloopError(message, title="Export failed") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        progress(written)
        return written

    # -- keys, users, teams ---------------------------------------------------------------------

    async def create_key(self, body: Mapping[str, Any]) -> KeyCreated:
        """A new key (``name``, ``role``, ``user_email``, ``labels``, ``expires_in_seconds``,
        ``tools``); its text is in the answer once."""
        return await self._call("POST", "/api/v1/keys/", KeyCreated, json=body)

    async def keys(self) -> list[KeyView]:
        return await self._call("GET", "/api/v1/keys/", list[KeyView])

    async def revoke_key(self, key_id: str) -> KeyView:
        return await self._call("POST", f"/api/v1/keys/{segment(key_id)}/revoke", KeyView)

    async def add_user(self, email: str, name: str = "") -> UserView:
        body = {"email": email, "name": name}
        return await self._call("POST", "/api/v1/users/", UserView, json=body)

    async def set_password(self, user: str, password: str, role: str | None = None) -> PasswordSet:
        """Set ``user``'s password (admin keys only) and, given, the role their logins get."""
        body: dict[str, Any] = {"password": password}
        if role is not None:
            body["role"] = role
        path = f"/api/v1/users/{segment(user)}/password"
        return await self._call("PUT", path, PasswordSet, json=body)

    async def users(self) -> list[UserView]:
        """The account's people (admin keys only)."""
        return await self._call("GET", "/api/v1/users/", list[UserView])

    async def link_user(self, user: str, identities: Mapping[str, str]) -> UserView:
        """Link (or with ``""`` unlink) ``user``'s identities on the approval channels."""
        path = f"/api/v1/users/{segment(user)}/link"
        return await self._call("POST", path, UserView, json=dict(identities))

    async def add_team(self, name: str, members: list[str]) -> TeamView:
        body = {"name": name, "members": members}
        return await self._call("POST", "/api/v1/teams/", TeamView, json=body)

    async def teams(self) -> list[TeamView]:
        return await self._call("GET", "/api/v1/teams/", list[TeamView])

    # -- devices ------------------------------------------------------------------------------

    async def start_pairing(self, user: str, expires_in_seconds: int = 600) -> PairingCreated:
        """A one-time pairing token for ``user`` (an email or user id) and its QR payload."""
        body = {"user": user, "expires_in_seconds": expires_in_seconds}
        return await self._call("POST", "/api/v1/pairing-tokens/", PairingCreated, json=body)

    async def devices(self, user: str | None = None) -> list[DeviceView]:
        """Paired devices, oldest first (admin keys only); ``user`` for one user's."""
        params = {"user": user}
        return await self._call("GET", "/api/v1/devices/", list[DeviceView], params=params)

    async def revoke_device(self, device_id: str) -> DeviceView:
        path = f"/api/v1/devices/{segment(device_id)}/revoke"
        return await self._call("POST", path, DeviceView)

    # -- upstream MCP servers -------------------------------------------------------------------

    async def servers(self) -> list[ServerView]:
        """The upstream MCP servers with their health on the replica that answers."""
        return await self._call("GET", "/api/v1/servers/", list[ServerView])

    async def add_server(self, body: Mapping[str, Any]) -> ServerView:
        """Register (or replace) a server: the fields of a policy's ``mcp_servers`` entry."""
        return await self._call("POST", "/api/v1/servers/", ServerView, json=body)

    async def remove_server(self, name: str) -> None:
        await self._send("DELETE", f"/api/v1/servers/{segment(name)}")

    async def server_tools(self, server: str) -> list[ToolView]:
        path = f"/api/v1/servers/{segment(server)}/tools"
        return await self._call("GET", path, list[ToolView])

    async def refresh_server(self, server: str) -> list[ToolView]:
        """Ask the upstream for its tools now (admin): new ones are pinned, changed ones blocked."""
        path = f"/api/v1/servers/{segment(server)}/refresh"
        return await self._call("POST", path, list[ToolView])

    async def accept_tool(self, server: str, tool: str) -> AcceptedTool:
        """Pin the tool's current definition (admin); answers the diff that was accepted."""
        path = f"/api/v1/servers/{segment(server)}/tools/{segment(tool)}/accept"
        return await self._call("POST", path, AcceptedTool)

    # -- the model gateway: providers, secrets, flows ---------------------------------------------

    async def add_provider(self, body: Mapping[str, Any]) -> ProviderView:
        return await self._call("POST", "/api/v1/providers/", ProviderView, json=body)

    async def providers(self) -> list[ProviderView]:
        return await self._call("GET", "/api/v1/providers/", list[ProviderView])

    async def provider(self, name: str) -> ProviderView:
        return await self._call("GET", f"/api/v1/providers/{segment(name)}", ProviderView)

    async def remove_provider(self, name: str) -> None:
        await self._send("DELETE", f"/api/v1/providers/{segment(name)}")

    async def set_secret(self, name: str, value: str) -> SecretView:
        """Store ``local:NAME`` (write-only: no route returns the value)."""
        path = f"/api/v1/secrets/{segment(name)}"
        return await self._call("PUT", path, SecretView, json={"value": value})

    async def secrets(self) -> list[SecretView]:
        return await self._call("GET", "/api/v1/secrets/", list[SecretView])

    async def delete_secret(self, name: str) -> None:
        await self._send("DELETE", f"/api/v1/secrets/{segment(name)}")

    async def rotate_secret(self, name: str) -> SecretRotated:
        path = f"/api/v1/secrets/{segment(name)}/rotate"
        return await self._call("POST", path, SecretRotated)

    async def start_execution(self, flow: str, body: Mapping[str, Any]) -> ExecutionStarted:
        """Start an execution of ``flow``; its runtime token is in the answer once."""
        path = f"/api/v1/flows/{segment(flow)}/executions"
        return await self._call("POST", path, ExecutionStarted, json=body)

    async def execution(self, execution_id: str) -> ExecutionDetail:
        path = f"/api/v1/flows/executions/{segment(execution_id)}"
        return await self._call("GET", path, ExecutionDetail)

    async def revoke_execution(self, execution_id: str) -> ExecutionDetail:
        path = f"/api/v1/flows/executions/{segment(execution_id)}/revoke-token"
        return await self._call("POST", path, ExecutionDetail)

    # -- the model gateway: usage, budgets, prices ---------------------------------------------

    async def usage_summary(
        self,
        group_by: str = "day",
        since: datetime | str | None = None,
        *,
        until: datetime | str | None = None,
        flow: str | None = None,
    ) -> UsageSummary:
        """Gateway spend grouped by ``day``, ``model``, ``flow`` or ``api_key``."""
        params = {"group_by": group_by, "since": _time(since), "until": _time(until), "flow": flow}
        return await self._call("GET", "/api/v1/gateway/usage/summary", UsageSummary, params=params)

    async def budgets(self) -> list[BudgetView]:
        """The account's budgets with their spend and state."""
        return await self._call("GET", "/api/v1/budgets", list[BudgetView])

    async def add_budget(self, body: Mapping[str, Any]) -> BudgetView:
        return await self._call("POST", "/api/v1/budgets/", BudgetView, json=body)

    async def remove_budget(self, budget: str) -> None:
        await self._send("DELETE", f"/api/v1/budgets/{segment(budget)}")

    async def prices(self) -> PriceList:
        return await self._call("GET", "/api/v1/gateway/prices", PriceList)

    async def set_price(self, body: Mapping[str, Any]) -> PriceView:
        return await self._call("PUT", "/api/v1/gateway/prices", PriceView, json=body)

    async def unset_price(self, model: str) -> None:
        await self._send("DELETE", "/api/v1/gateway/prices", params={"model": model})

    # -- the model gateway: content capture, runtime sessions, captured interactions -------

    async def capture_rules(self) -> CaptureRules:
        """The account's capture rules (admin)."""
        return await self._call("GET", "/api/v1/gateway/capture", CaptureRules)

    async def set_capture_rule(self, body: Mapping[str, Any]) -> CaptureRuleView:
        """``{"scope", "subject", "mode", "max_bytes", "retention_days"}`` (admin)."""
        return await self._call("PUT", "/api/v1/gateway/capture", CaptureRuleView, json=body)

    async def delete_capture_rule(self, scope: str = "account", subject: str = "") -> None:
        params = {"scope": scope, "subject": subject}
        await self._send("DELETE", "/api/v1/gateway/capture", params=params)

    async def runtime_sessions(
        self,
        *,
        flow: str | None = None,
        principal: str | None = None,
        status: str = "all",
        since: datetime | str | None = None,
        limit: int = 50,
    ) -> RuntimeSessions:
        """Recent runtime sessions (flow executions and ``X-Preloop-Session-Id`` sessions)."""
        params = {
            "flow": flow,
            "principal": principal,
            "status": status,
            "since": _time(since),
            "limit": limit,
        }
        path = "/api/v1/runtime/sessions"
        return await self._call("GET", path, RuntimeSessions, params=_clean(params))

    async def runtime_session(self, session_id: str, *, limit: int = 100) -> RuntimeSessionDetail:
        """One session with its latest calls; content for admins and approvers only."""
        path = f"/api/v1/runtime/sessions/{segment(session_id)}"
        return await self._call("GET", path, RuntimeSessionDetail, params={"limit": limit})

    async def search_interactions(
        self,
        q: str = "",
        *,
        search_type: str = "fulltext",
        model: str | None = None,
        flow: str | None = None,
        principal: str | None = None,
        session: str | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int = 50,
    ) -> InteractionSearch:
        """Search captured interactions (full text or similarity); audited by the server."""
        params = {
            "q": q,
            "search_type": search_type,
            "model": model,
            "flow": flow,
            "principal": principal,
            "session": session,
            "since": _time(since),
            "until": _time(until),
            "limit": limit,
        }
        path = "/api/v1/gateway/interactions"
        return await self._call("GET", path, InteractionSearch, params=_clean(params))

    # -- issue trackers ---------------------------------------------------------------------

    async def add_tracker(self, body: Mapping[str, Any]) -> TrackerCreated:
        """Connect a tracker; the webhook secret made for it is in the answer once."""
        return await self._call("POST", "/api/v1/trackers/", TrackerCreated, json=body)

    async def trackers(self) -> list[TrackerView]:
        return await self._call("GET", "/api/v1/trackers/", list[TrackerView])

    async def tracker(self, name: str) -> TrackerView:
        return await self._call("GET", f"/api/v1/trackers/{segment(name)}", TrackerView)

    async def remove_tracker(self, name: str) -> None:
        await self._send("DELETE", f"/api/v1/trackers/{segment(name)}")

    async def test_tracker(self, name: str) -> list[ConnectionTest]:
        """What the tracker answers for each of its projects."""
        path = f"/api/v1/trackers/{segment(name)}/test"
        return await self._call("POST", path, list[ConnectionTest])

    async def sync_tracker(
        self,
        name: str,
        *,
        full: bool = False,
        progress: Callable[[SyncEvent], None] = lambda _: None,
    ) -> SyncReportView:
        """Sync ``name`` now, calling ``progress`` with each page's event; its report. A
        scan that could not run at all raises ``PreloopError`` with the server's message."""
        path = f"/api/v1/trackers/{segment(name)}/sync"
        params = {"full": "true" if full else "false"}
        try:
            async with self._http.stream(
                "POST", path, params=params, timeout=SYNC_TIMEOUT
            ) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise error_from_answer(response.status_code, body, response.reason_phrase)
                async for line in response.aiter_lines():
                    if not line:
                        continue
                    event = self._decode(line.encode(), SyncEvent, "POST", path)
                    if event.type == "progress":
                        progress(event)
                    elif event.report is not None:
                        return event.report
                    else:
                        raise PreloopError(f"{name}: {event.message}", title="Sync failed")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        raise PreloopError(
            f"the server ended the sync of {name} without a report", title="Unexpected answer"
        )

    def _decode(self, content: bytes, into: type[T], method: str, path: str) -> T:
        try:
            return msgspec.json.decode(content, type=into)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise PreloopError(
                f"The server's answer to {method} {path} was not understood: {exc}.",
                title="Unexpected answer",
            ) from exc

    async def sync_status(self) -> list[TrackerSyncStatus]:
        return await self._call("GET", "/api/v1/sync/status", list[TrackerSyncStatus])

    async def test_connection(
        self, organization: str | None, project: str, *, tracker: str | None = None
    ) -> ConnectionTest:
        body = {"organization": organization, "project": project, "tracker": tracker}
        path = "/api/v1/projects/test-connection"
        return await self._call("POST", path, ConnectionTest, json=_clean(body))

    async def search_issues(self, params: Params) -> IssueSearchResults:
        """``GET /api/v1/issues/search`` (organization, project, query, limit, filters)."""
        path = "/api/v1/issues/search"
        return await self._call("GET", path, IssueSearchResults, params=params)

    async def create_issue(self, body: Mapping[str, Any]) -> IssueView:
        return await self._call("POST", "/api/v1/issues/", IssueView, json=dict(body))

    async def issue_compliance(
        self, issue: str, *, metric: str = "DoR", improve: bool = False
    ) -> ComplianceReport:
        """``GET /api/v1/issues/compliance`` (issue: id, key or URL, in the query)."""
        path = "/api/v1/issues/compliance"
        params = {"issue": issue, "metric": metric, "improve": "true" if improve else "false"}
        return await self._call("GET", path, ComplianceReport, params=params)

    # -- duplicates (issue 16) --------------------------------------------------------------

    async def duplicate_pairs(self, params: Params) -> DuplicatePairs:
        """``GET /api/v1/issues/duplicates`` (project, threshold, limit, confirm)."""
        path = "/api/v1/issues/duplicates"
        return await self._call("GET", path, DuplicatePairs, params=params)

    async def duplicates_of(self, issue: str, params: Params) -> DuplicateCandidates:
        """One issue's candidates (``issue``: Preloop's id, a key or a URL)."""
        path = "/api/v1/issues/duplicates/candidates"
        return await self._call("GET", path, DuplicateCandidates, params={**params, "issue": issue})

    async def resolve_duplicate(self, body: Mapping[str, Any]) -> DuplicateResolved:
        path = "/api/v1/issues/duplicates/resolve"
        return await self._call("POST", path, DuplicateResolved, json=_clean(body))


def _clean(params: Params) -> dict[str, Any]:
    """Query parameters without the ones not given."""
    return {k: v for k, v in params.items() if v is not None}


def _time(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value
