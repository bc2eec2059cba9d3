"""The unified WebSocket ``/api/v1/ws/unified``: live events for dashboards and apps.

One socket per client, authenticated with an API key or a paired device's credential (the
``Authorization: Bearer`` header, or ``?token=`` since browsers cannot set headers on a
WebSocket). The client subscribes to topics (``approvals``, ``activity``, ``flow_executions``,
``system``) with optional filters; the server sends ``event`` messages, a ``heartbeat`` every
``PRELOOP_SERVER_WS_HEARTBEAT_SECONDS`` and an ``error`` for every message it cannot use (the
socket stays open). Only events of the caller's account are ever sent.

    approvals        ◀─ bus "approvals"  (an agent key: its own calls; a device: the requests
                                          its user may decide, as GET /devices/me/approvals)
    activity         ◀─ the audit log, tailed (not for agent keys or devices)
    system           ◀─ bus "system"     (not for agent keys or devices; hub/system_events.py,
                                          server/system_events.py)
    flow_executions  ◀─ reserved: accepted, silent

Every message shape is in docs/websocket.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, cast
from urllib.parse import parse_qs

import msgspec
from litestar import Litestar, asgi
from litestar.enums import ScopeType
from litestar.types import Receive, Scope, Send

from hub.deep_json import too_deep
from hub.devices import DeviceCaller, DeviceService, approver_of
from hub.errors import AuthenticationError, NotFoundError, ValidationError
from hub.events import (
    APPROVALS_TOPIC,
    SYSTEM_TOPIC,
    ApprovalDecided,
    ApprovalEscalated,
    ApprovalRequested,
    ApprovalVoted,
    Event,
    SystemEvent,
    event_data,
)
from hub.keys import Caller
from hub.ports import AuditQuery
from hub.records import AuditEvent, Role
from server.auth import bearer_token

log = logging.getLogger("preloop.server")

WS_PATH = "/api/v1/ws/unified"
# Close codes (the 4000-4999 range is the application's): the reason says what to do.
CLOSE_UNAUTHENTICATED = 4401
TOPICS = ("approvals", "activity", "flow_executions", "system")
# Topics nothing publishes to yet: a subscription is accepted and stays silent.
RESERVED_TOPICS = ("flow_executions",)
APPROVAL_FILTERS = ("status", "tool", "server", "workflow", "request_id")
ACTIVITY_FILTERS = ("kind", "actor")  # kind: exact, or a prefix ending in "." ("tool.")
SYSTEM_FILTERS = ("kind", "server")
FILTERS = {"approvals": APPROVAL_FILTERS, "activity": ACTIVITY_FILTERS, "system": SYSTEM_FILTERS}
DEVICE_ROLE = "device"  # what ``connected`` says of a device credential (not a key role)
ACTIVITY_BATCH = 100
MAX_MESSAGE_CHARS = 65_536


class WebSocketMessageError(ValidationError):
    """A client message the server cannot use: answered with an ``error`` message."""


Filters = dict[str, tuple[str, ...]]
RawSend = Callable[[dict[str, Any]], Awaitable[None]]


def parse_filters(topic: str, raw: object) -> Filters:
    """The subscription's filters: each a string or a list of strings (any of them matches)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise WebSocketMessageError('\'filters\' must be an object, e.g. {"status": "pending"}')
    known = FILTERS.get(topic, ())
    filters: Filters = {}
    for name, value in raw.items():
        if name not in known:
            allowed = ", ".join(known) or "none"
            raise WebSocketMessageError(
                f"unknown filter {name!r} for topic {topic!r} (known: {allowed})"
            )
        values = (value,) if isinstance(value, str) else value
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise WebSocketMessageError(f"filter {name!r} must be a string or a list of strings")
        filters[name] = tuple(values)
    return filters


def event_status(event: Event) -> str:
    """The request's status the event reports."""
    return event.status if isinstance(event, ApprovalDecided) else "pending"


def kind_matches(kind: str, wanted: tuple[str, ...]) -> bool:
    return any(kind == w or (w.endswith(".") and kind.startswith(w)) for w in wanted)


def activity_data(event: AuditEvent) -> dict[str, Any]:
    """An audit event as an ``activity`` event's payload."""
    data: dict[str, Any] = msgspec.to_builtins(event)
    data.pop("prev_hash", None)
    data.pop("hash", None)
    return {"type": "audit.appended", **data}


Subscriber = Caller | DeviceCaller


def may_subscribe(caller: Subscriber, topic: str) -> bool:
    """An agent key and a device follow approvals only; every other role sees its account."""
    if isinstance(caller, DeviceCaller):
        return topic == "approvals"
    return topic == "approvals" or not caller.has(Role.AGENT)


def topics_of(caller: Subscriber) -> list[str]:
    """The topics ``caller`` may subscribe to."""
    return [topic for topic in TOPICS if may_subscribe(caller, topic)]


def refusal(caller: Subscriber, topic: str) -> str:
    who = "a device credential" if isinstance(caller, DeviceCaller) else "an agent key"
    return f"{who} may subscribe only to 'approvals', not {topic!r}"


def system_server(event: SystemEvent) -> str | None:
    """The upstream MCP server a system event is about, if any."""
    server = getattr(event, "server", None)
    return server if isinstance(server, str) else None


def identity_of(caller: Subscriber) -> dict[str, Any]:
    """Who the socket is, for the ``connected`` message."""
    if isinstance(caller, DeviceCaller):
        return {
            "account_id": caller.account_id,
            "device_id": caller.device_id,
            "user_id": caller.user_id,
            "role": DEVICE_ROLE,
        }
    return {"account_id": caller.account_id, "key_id": caller.key_id, "role": caller.role.value}


def subscriber_id(caller: Subscriber) -> str:
    return caller.device_id if isinstance(caller, DeviceCaller) else caller.key_id


class UnifiedSocket:
    """One client's connection: its caller, its subscriptions and their event pumps."""

    def __init__(
        self, hub: Any, caller: Subscriber, send: Callable[[dict[str, Any]], Awaitable[None]]
    ):
        self._hub = hub
        self._caller = caller
        self._send = send
        self._filters: dict[str, Filters] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}

    async def handle(self, text: str) -> None:
        """One client message; a bad one gets an ``error`` answer, never a closed socket."""
        try:
            await self._dispatch(text)
        except WebSocketMessageError as error:
            await self._send({"type": "error", "message": str(error)})

    async def _dispatch(self, text: str) -> None:
        if len(text) > MAX_MESSAGE_CHARS:
            raise WebSocketMessageError(
                f"message too long (at most {MAX_MESSAGE_CHARS} characters)"
            )
        try:
            message = msgspec.json.decode(text)
        except msgspec.DecodeError:
            raise WebSocketMessageError("the message is not valid JSON") from None
        except RecursionError:
            raise WebSocketMessageError(too_deep("the message").message) from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise WebSocketMessageError('every message is a JSON object with a "type"')
        kind = message["type"]
        if kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "subscribe":
            topic = self._topic(message)
            if not may_subscribe(self._caller, topic):
                raise WebSocketMessageError(refusal(self._caller, topic))
            filters = parse_filters(topic, message.get("filters"))
            if not await self._subscribe(topic, filters):
                return
            await self._send({"type": "subscribed", "topic": topic, "filters": _plain(filters)})
        elif kind == "unsubscribe":
            topic = self._topic(message)
            await self._unsubscribe(topic)
            await self._send({"type": "unsubscribed", "topic": topic})
        else:
            raise WebSocketMessageError(
                f"unknown message type {kind!r} (use subscribe, unsubscribe or ping)"
            )

    @staticmethod
    def _topic(message: dict[str, Any]) -> str:
        topic = message.get("topic")
        if topic not in TOPICS:
            raise WebSocketMessageError(f"unknown topic {topic!r} (topics: {', '.join(TOPICS)})")
        return str(topic)

    async def _subscribe(self, topic: str, filters: Filters) -> bool:
        """Start ``topic``'s pump (once); ``False`` when it failed (the client was told)."""
        self._filters[topic] = filters  # subscribing again replaces the filters
        if topic == "approvals" and topic not in self._pumps:
            ready = asyncio.Event()
            pump = self._start(topic, self._pump_approvals(ready), ready)
            await ready.wait()  # events after the ``subscribed`` answer are never missed
            return not pump.done()
        if topic == "system" and topic not in self._pumps:
            ready = asyncio.Event()
            pump = self._start(topic, self._pump_system(ready), ready)
            await ready.wait()
            return not pump.done()
        if topic == "activity" and topic not in self._pumps:
            after = await self._last_audit_seq()  # events from now on, not the history
            self._start(topic, self._pump_activity(after), asyncio.Event())
        return True

    def _start(
        self, topic: str, pump: Coroutine[Any, Any, None], ready: asyncio.Event
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(self._guarded(topic, pump, ready))
        self._pumps[topic] = task
        return task

    async def _guarded(
        self, topic: str, pump: Coroutine[Any, Any, None], ready: asyncio.Event
    ) -> None:
        """Run a pump; a server error ends the subscription, logged, and tells the client."""
        try:
            await pump
        except OSError:
            pass  # the client went away
        except Exception:
            log.exception("the %r subscription of %s stopped", topic, subscriber_id(self._caller))
            self._pumps.pop(topic, None)
            self._filters.pop(topic, None)
            message = f"the {topic!r} subscription stopped on a server error; subscribe again"
            with contextlib.suppress(OSError):
                await self._send({"type": "error", "topic": topic, "message": message})
        finally:
            ready.set()

    async def _unsubscribe(self, topic: str) -> None:
        self._filters.pop(topic, None)
        pump = self._pumps.pop(topic, None)
        if pump is not None:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def close(self) -> None:
        for topic in tuple(self._pumps):
            await self._unsubscribe(topic)

    async def _pump_approvals(self, ready: asyncio.Event) -> None:
        async with self._hub.bus.subscribe(APPROVALS_TOPIC) as events:
            ready.set()
            await self._forward(events)

    async def _forward(self, events: AsyncIterator[Event]) -> None:
        """Send the approval events this client may see and asked for."""
        async for event in events:
            if await self._wanted(event):
                data = event_data(event)
                await self._send({"type": "event", "topic": "approvals", "event": data})

    async def _pump_system(self, ready: asyncio.Event) -> None:
        async with self._hub.bus.subscribe(SYSTEM_TOPIC) as events:
            ready.set()
            async for event in events:
                if self._system_wanted(event):
                    data = event_data(event)
                    await self._send({"type": "event", "topic": "system", "event": data})

    def _system_wanted(self, event: Event) -> bool:
        """The caller's account's system events that match the ``system`` filters."""
        if event.account_id != self._caller.account_id or not isinstance(event, SystemEvent):
            return False
        filters = self._filters.get("system", {})
        kind = str(type(event).__struct_config__.tag)  # e.g. "upstream.state_changed"
        if "kind" in filters and not kind_matches(kind, filters["kind"]):
            return False
        return "server" not in filters or system_server(event) in filters["server"]

    async def _last_audit_seq(self) -> int:
        newest = await self._hub.auditor.query(
            self._caller.account_id, AuditQuery(limit=1, newest_first=True)
        )
        return newest[0].seq if newest else 0

    async def _pump_activity(self, after: int) -> None:
        """Tail the account's audit log: every event appended after the subscription, in
        order, read every ``PRELOOP_SERVER_WS_ACTIVITY_SECONDS`` (all replicas' events)."""
        every = self._hub.settings.server.ws_activity_seconds
        while True:
            query = AuditQuery(after_seq=after, newest_first=False, limit=ACTIVITY_BATCH)
            found = await self._hub.auditor.query(self._caller.account_id, query)
            for event in found:
                after = event.seq
                if self._activity_wanted(event):
                    payload = activity_data(event)
                    await self._send({"type": "event", "topic": "activity", "event": payload})
            if len(found) < ACTIVITY_BATCH:
                await asyncio.sleep(every)

    def _activity_wanted(self, event: AuditEvent) -> bool:
        filters = self._filters.get("activity", {})
        if "kind" in filters and not kind_matches(event.kind, filters["kind"]):
            return False
        return "actor" not in filters or event.actor in filters["actor"]

    async def _wanted(self, event: Event) -> bool:
        """Whether this client sees ``event``: its account, its own calls (an agent), the
        requests its user may decide (a device), its filters."""
        approval_events = ApprovalRequested | ApprovalVoted | ApprovalEscalated | ApprovalDecided
        if event.account_id != self._caller.account_id or not isinstance(event, approval_events):
            return False
        filters = self._filters.get("approvals", {})
        if "status" in filters and event_status(event) not in filters["status"]:
            return False
        if "request_id" in filters and event.request_id not in filters["request_id"]:
            return False
        caller = self._caller
        device = isinstance(caller, DeviceCaller)
        agent = isinstance(caller, Caller) and caller.has(Role.AGENT)
        narrowed = any(name in filters for name in ("tool", "server", "workflow"))
        if not (agent or device or narrowed):
            return True  # nothing more to check: no store read
        try:
            request = await self._hub.approvals.get(event.account_id, event.request_id)
        except NotFoundError:
            return False
        if isinstance(caller, DeviceCaller):
            # What the device API lists: the requests its user may decide (listed approvers,
            # teams, escalation approvers), decided ones too, so the app can drop them.
            if not await self._hub.approvals.may_decide(request, approver_of(caller)):
                return False
        elif agent and request.principal_key_id != caller.key_id:
            return False
        fields = {"tool": request.tool, "server": request.server, "workflow": request.workflow}
        return all(fields[name] in filters[name] for name in fields if name in filters)


def _plain(filters: Filters) -> dict[str, list[str]]:
    return {name: list(values) for name, values in filters.items()}


def credential(scope: Scope) -> str:
    """The API key or device credential: the ``Authorization`` header, else the ``token``
    query parameter."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    if "authorization" in headers:
        return bearer_token(headers["authorization"])
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    token = (query.get("token") or [""])[0].strip()
    if not token:
        raise AuthenticationError(
            "missing API key: send 'Authorization: Bearer <key>' or connect with '?token=<key>'"
        )
    return token


async def authenticate(hub: Any, token: str) -> Subscriber:
    """An API key through the key cache; a device credential read from the store (a revoked
    device is refused at once, as on the device routes)."""
    if DeviceService.is_credential(token):
        device: DeviceCaller = await hub.devices.authenticate(token)
        return device
    caller: Caller = await hub.identity.authenticate(token)
    return caller


async def serve_socket(scope: Scope, receive: Receive, send: RawSend) -> None:
    """Accept, authenticate, then read client messages and send events until either side
    closes."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    app = Litestar.from_scope(scope)
    hub = app.state.hub
    try:
        token = credential(scope)
        caller = await authenticate(hub, token)
    except AuthenticationError as error:
        await send({"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED, "reason": str(error)})
        return
    lock = asyncio.Lock()
    closed = False

    async def send_json(message: dict[str, Any]) -> None:
        async with lock:
            if not closed:
                text = msgspec.json.encode(message).decode()
                await send({"type": "websocket.send", "text": text})

    every = hub.settings.server.ws_heartbeat_seconds

    async def heartbeat() -> None:
        """A heartbeat every ``every`` seconds; the credential is checked again each time, so
        a revoked or expired key, or a revoked device, loses its socket within one
        heartbeat."""
        nonlocal closed
        while True:
            await asyncio.sleep(every)
            try:
                await authenticate(hub, token)
            except AuthenticationError as error:
                async with lock:
                    closed = True
                    reason = str(error)
                    await send(
                        {"type": "websocket.close", "code": CLOSE_UNAUTHENTICATED, "reason": reason}
                    )
                return
            await send_json({"type": "heartbeat", "at": msgspec.to_builtins(hub.clock.now())})

    socket = UnifiedSocket(hub, caller, send_json)
    beating = asyncio.create_task(heartbeat())
    try:
        await send_json(
            {
                "type": "connected",
                **identity_of(caller),
                "topics": topics_of(caller),
                "heartbeat_seconds": every,
            }
        )
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if not isinstance(text, str):
                await send_json({"type": "error", "message": "send text frames with JSON"})
                continue
            await socket.handle(text)
    except OSError:
        pass  # the client went away while we were sending
    finally:
        closed = True
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError, OSError):
            await beating
        await socket.close()


@asgi(WS_PATH, copy_scope=True, include_in_schema=False)
async def unified_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """The unified WebSocket (see docs/websocket.md); a plain HTTP request gets 426."""
    raw_send = cast(RawSend, send)  # Litestar's event types: only its own shapes
    if scope["type"] == ScopeType.WEBSOCKET:
        await serve_socket(scope, receive, raw_send)
        return
    body = b"this endpoint is a WebSocket: connect with ws:// or wss://"
    await raw_send(
        {
            "type": "http.response.start",
            "status": 426,
            "headers": [(b"content-type", b"text/plain"), (b"upgrade", b"websocket")],
        }
    )
    await raw_send({"type": "http.response.body", "body": body})
