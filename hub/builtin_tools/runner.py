"""Running Preloop's built-in tools: the pipeline's companion of the ``Upstream`` port
(hub/tool_calls/runs.py ``BuiltinRunner``). A call reaches :meth:`BuiltinTools.run` only
after every check an upstream call passes (role, allow-list, policy, approval, the attempt
record); what it answers is recorded like an upstream's result.

    run(account, tool, arguments) ─▶ arguments decoded (arguments.py; bad ─▶ isError naming it)
      ─▶ no tracker connected ─▶ isError saying how to connect one
      ─▶ reads.py  the synced index (Hub.trackers); live when asked or not yet indexed
      ─▶ writes.py the tracker (Hub.tracker_clients ─▶ TrackerClient), then the index
      ─▶ structuredContent and its JSON text │ a tracker's refusal ─▶ isError, its message

The trackers are read from ``access`` on every call (the Hub's ``trackers``,
``tracker_clients``, ``compliance``, the scorer of issues, and ``duplicates``), so the
composition root or a test may set them after start-up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hub.builtin_tools import reads, writes
from hub.builtin_tools.arguments import decode
from hub.builtin_tools.definitions import DEFINITIONS
from hub.builtin_tools.names import (
    ADD_COMMENT,
    CREATE_ISSUE,
    CREATE_PULL_REQUEST,
    ESTIMATE_COMPLIANCE,
    GET_ISSUE,
    GET_PULL_REQUEST,
    IMPROVE_COMPLIANCE,
    PULL_REQUEST_TOOLS,
    SEARCH,
    UPDATE_COMMENT,
    UPDATE_ISSUE,
    UPDATE_PULL_REQUEST,
)
from hub.builtin_tools.references import CODE_KINDS, NO_TRACKER
from hub.builtin_tools.results import BuiltinToolError, ok, refused, tracker_failed
from hub.builtin_tools.session import Session
from hub.clock import Clock
from hub.compliance.service import ComplianceService
from hub.errors import PreloopError, TrackerError
from hub.search.duplicates import Duplicates
from hub.search.embedders import Embedder
from hub.tool_results import ToolResult
from hub.trackers.ports import TrackerClients, TrackerStorage

Handler = Callable[[Session, Any], Awaitable[dict[str, Any]]]

HANDLERS: dict[str, Handler] = {
    GET_ISSUE: reads.get_issue,
    CREATE_ISSUE: writes.create_issue,
    UPDATE_ISSUE: writes.update_issue,
    SEARCH: reads.search,
    ESTIMATE_COMPLIANCE: reads.estimate_compliance,
    IMPROVE_COMPLIANCE: reads.improve_compliance,
    ADD_COMMENT: writes.add_comment,
    UPDATE_COMMENT: writes.update_comment,
    GET_PULL_REQUEST: reads.get_pull_request,
    UPDATE_PULL_REQUEST: writes.update_pull_request,
    CREATE_PULL_REQUEST: writes.create_pull_request,
}


class TrackerAccess(Protocol):
    """Where the built-in tools find the trackers (server/hub_services.py's ``Hub``)."""

    @property
    def trackers(self) -> TrackerStorage | None: ...

    @property
    def tracker_clients(self) -> TrackerClients | None: ...

    @property
    def compliance(self) -> ComplianceService | None: ...

    @property
    def duplicates(self) -> Duplicates | None:
        """What ``create_issue`` checks a draft with (``None``: no check)."""
        ...


class BuiltinTools:
    """``embedder``: what embeds a ``search`` query (read on each call: the composition root
    sets the hub's after start-up); the hashing embedder when not given."""

    def __init__(
        self,
        access: TrackerAccess,
        clock: Clock,
        *,
        embedder: Callable[[], Embedder] | None = None,
    ) -> None:
        self._access = access
        self._clock = clock
        self._embedder = embedder

    async def listed(self, account_id: str) -> list[dict[str, Any]]:
        """The definitions of the tools the account can use: none without a connected
        tracker, the pull-request tools only with a GitHub or GitLab one
        (docs/decisions/0091)."""
        storage = self._access.trackers
        if storage is None:
            return []
        kinds = {t.kind for t in await storage.trackers.list(account_id)}
        if not kinds:
            return []
        code = bool(kinds & CODE_KINDS)
        return [d for d in DEFINITIONS if code or d["name"] not in PULL_REQUEST_TOOLS]

    async def run(self, account_id: str, tool: str, arguments: dict[str, Any]) -> ToolResult:
        """One call of ``tool``; its own failures are ``isError`` results, never raised."""
        handler = HANDLERS.get(tool)
        if handler is None:
            return refused(tool, f"{tool!r} is not one of Preloop's built-in tools")
        try:
            args = decode(tool, arguments)
            storage = self._access.trackers
            if storage is None:
                raise BuiltinToolError(NO_TRACKER)
            embedder = self._embedder() if self._embedder is not None else None
            session = Session(
                account_id,
                storage,
                self._access.tracker_clients,
                self._clock,
                embedder,
                self._access.compliance,
                duplicates=self._access.duplicates,
            )
            if not await session.refs.trackers():
                raise BuiltinToolError(NO_TRACKER)
            return ok(await handler(session, args))
        except BuiltinToolError as exc:
            return refused(tool, f"{tool}: {exc.message}")
        except TrackerError as exc:
            return tracker_failed(tool, exc)
        except PreloopError as exc:  # a store refused: say so, as the tool's error
            return refused(tool, f"{tool} failed in Preloop: {exc.message}")
