"""Upstream list changes, relayed to the agents connected to ``/mcp``.

    upstream ─ notifications/{tools,resources,prompts}/list_changed ─▶ pool ─▶ gateway
          ─▶ ListChangedRelay.publish(account, kind)
              handshake era: every remembered session of the account, on its standalone
                             (GET) stream
              2026-07-28:    every subscriptions/listen stream of the account that asked for
                             that kind (one subscription bus per account)

Handshake-era sessions are remembered by a server middleware that sees their requests. The SDK
tells nobody when a session ends and drops notifications to an ended one silently, so a
session is remembered until more than ``max_sessions`` newer ones push it out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio
import mcp_types as types
from mcp.server import NotificationOptions, Server, ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

log = logging.getLogger("preloop.mcp")

Ctx = ServerRequestContext[Any, Any]

LIST_CHANGED = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
SEND_TIMEOUT = 5.0  # bound on handing one notification to one session's stream

_NOTIFICATIONS: dict[str, Callable[[], types.ServerNotification]] = {
    "tools": types.ToolListChangedNotification,
    "resources": types.ResourceListChangedNotification,
    "prompts": types.PromptListChangedNotification,
}
_EVENTS: dict[str, Callable[[], ServerEvent]] = {
    "tools": ToolsListChanged,
    "resources": ResourcesListChanged,
    "prompts": PromptsListChanged,
}


class NotifyingServer(Server[Any]):
    """The SDK's low-level server, declaring ``listChanged`` for tools, resources and prompts
    in the handshake era too: the streamable HTTP session manager asks for the default
    initialization options, whose notification options say no. (At 2026-07-28 the SDK
    declares them because ``subscriptions/listen`` is served.) It never declares resource
    subscriptions: updates of single resources are not relayed."""

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        capabilities = super().get_capabilities(
            notification_options,
            experimental_capabilities,
            extensions,
            protocol_version=protocol_version,
        )
        if capabilities.resources is not None:
            capabilities.resources.subscribe = False
        return capabilities

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or LIST_CHANGED, experimental_capabilities, extensions
        )


class ListChangedRelay:
    """Delivers list-changed notifications to every live agent session of an account."""

    def __init__(
        self, account_of: Callable[[Ctx], str | None], *, max_sessions: int = 10_000
    ) -> None:
        self._account_of = account_of
        self._max_sessions = max_sessions
        # Handshake-era MCP session id -> (account id, a session handle). Any request's
        # handle will do: notifications without a related request use the connection's
        # standalone stream.
        self._sessions: dict[str, tuple[str, ServerSession]] = {}
        self._listeners: dict[str, ListenHandler] = {}  # account id -> its listen handler
        self._buses: dict[str, InMemorySubscriptionBus] = {}  # account id -> its bus

    async def remember(self, ctx: Ctx, call_next: CallNext) -> HandlerResult:
        """Server middleware: note the handshake-era session a message arrived on."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            headers = getattr(ctx.request, "headers", None)
            session_id = headers.get("mcp-session-id") if headers is not None else None
            if session_id and session_id not in self._sessions:
                account_id = self._account_of(ctx)
                if account_id is not None:
                    if len(self._sessions) >= self._max_sessions:
                        del self._sessions[next(iter(self._sessions))]  # the oldest
                    self._sessions[session_id] = (account_id, ctx.session)
        return await call_next(ctx)

    async def listen(
        self, account_id: str, ctx: Ctx, params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """Serve one ``subscriptions/listen`` stream (2026-07-28) of ``account_id``."""
        handler = self._listeners.get(account_id)
        if handler is None:
            bus = self._buses[account_id] = InMemorySubscriptionBus()
            handler = self._listeners[account_id] = ListenHandler(bus)
        return await handler(ctx, params)

    async def publish(self, account_id: str, kind: str) -> None:
        """Tell every live session of ``account_id`` that its ``kind`` list changed. Never
        raises: a notification is advisory."""
        try:
            bus = self._buses.get(account_id)
            if bus is not None:
                await bus.publish(_EVENTS[kind]())
            sessions = [s for owner, s in self._sessions.values() if owner == account_id]
            notification = _NOTIFICATIONS[kind]()
            async with anyio.create_task_group() as tg:
                for session in sessions:
                    tg.start_soon(_notify, session, notification)
        except Exception:
            log.exception("relaying a %s list change failed", kind)

    def close(self) -> None:
        """End every listen stream gracefully (the server is stopping)."""
        for handler in self._listeners.values():
            handler.close()


async def _notify(session: ServerSession, notification: types.ServerNotification) -> None:
    # The SDK drops a notification to an ended session (or one without a GET stream) itself.
    with anyio.move_on_after(SEND_TIMEOUT) as scope:
        await session.send_notification(notification)
    if scope.cancelled_caught:
        log.warning("an MCP session did not take a list-changed notification in time")
