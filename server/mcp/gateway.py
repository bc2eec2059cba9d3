"""The inbound side of the MCP firewall: the MCP server agents connect to, at ``/mcp``.

    agent ─▶ /mcp (bearer key checked here, before the SDK) ─▶ SDK session manager
          ─▶ tools/list: every upstream of the account, synced into the catalogue, names
             prefixed ``<server>__<tool>``, a ``justification`` property where the policy
             asks for one, and the built-in ``get_approval_status``
          ─▶ tools/call: pinned-changed tool ─▶ refused; else FirewallService.call

A call waiting for approval stops waiting (its request withdrawn) once its HTTP exchange has
ended: Preloop keeps no event store, so an answer can reach the agent only on the connection
that asked (docs/decisions/0009).

Results are the firewall's JSON dicts validated into the SDK's result model (the SDK checks
every result against the negotiated era's schema before sending it in any case).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from hub import __version__
from hub.catalog import is_blocked
from hub.errors import NotFoundError, PermissionDeniedError, PreloopError
from hub.firewall import JUSTIFICATION_ARG, STATUS_TOOL, CallRequest, Progress, error_result
from hub.keys import Caller
from hub.policy.model import JustificationMode
from server.auth import bearer_token
from server.bootstrap import sync_upstreams
from server.errors import error_body, status_of

if TYPE_CHECKING:
    from server.bootstrap import Hub

log = logging.getLogger("preloop.mcp")

SEPARATOR = "__"
CALLER_KEY = "preloop_caller"
ENDED_KEY = "preloop_exchange_ended"  # set once the HTTP exchange carrying a request ended
SESSION_HEADER = b"mcp-session-id"
MAX_BOUND_SESSIONS = 10_000  # the SDK's own default limit of live sessions

Ctx = ServerRequestContext[Any, Any]
Scope = dict[str, Any]

STATUS_TOOL_DEFINITION: dict[str, Any] = {
    "name": STATUS_TOOL,
    "description": (
        "Preloop: the status of a call that waits for human approval. Once it is approved, "
        "this runs the call (once) and returns its result."
    ),
    "inputSchema": {
        "type": "object",
        "properties": {
            "approval_id": {
                "type": "string",
                "description": "The approval id the held call returned.",
            }
        },
        "required": ["approval_id"],
    },
}


def exposed_name(server: str, tool: str) -> str:
    """The name an agent sees: always ``<server>__<tool>`` (docs/decisions/0004)."""
    return f"{server}{SEPARATOR}{tool}"


def split_name(name: str, servers: list[str]) -> tuple[str, str] | None:
    """(server, tool) for an exposed name; the longest matching server name wins."""
    for server in sorted(servers, key=len, reverse=True):
        prefix = server + SEPARATOR
        if name.startswith(prefix) and len(name) > len(prefix):
            return server, name[len(prefix) :]
    return None


def caller_of(ctx: Ctx) -> Caller:
    request = ctx.request
    scope = getattr(request, "scope", None) or {}
    caller = (scope.get("state") or {}).get(CALLER_KEY)
    if not isinstance(caller, Caller):  # the HTTP layer always sets it; fail closed
        raise MCPError(code=types.INVALID_REQUEST, message="not authenticated")
    return caller


def _exchange_ended(ctx: Ctx) -> Callable[[], Awaitable[Any]] | None:
    scope = getattr(ctx.request, "scope", None) or {}
    ended = (scope.get("state") or {}).get(ENDED_KEY)
    return ended.wait if isinstance(ended, asyncio.Event) else None


def _session_id(ctx: Ctx) -> str:
    headers = getattr(ctx.request, "headers", None)
    value = headers.get("mcp-session-id") if headers is not None else None
    return str(value or "")


def with_justification(definition: dict[str, Any], mode: JustificationMode) -> dict[str, Any]:
    """A copy of a tool definition whose input schema asks for a ``justification``."""
    schema = dict(definition.get("inputSchema") or {"type": "object"})
    properties = dict(schema.get("properties") or {})
    properties[JUSTIFICATION_ARG] = {
        "type": "string",
        "description": "Why this call is needed (recorded in Preloop's audit trail"
        + (", required)." if mode is JustificationMode.REQUIRED else ")."),
    }
    schema["properties"] = properties
    if mode is JustificationMode.REQUIRED:
        required = [r for r in schema.get("required") or [] if r != JUSTIFICATION_ARG]
        schema["required"] = [*required, JUSTIFICATION_ARG]
    return {**definition, "inputSchema": schema}


class Gateway:
    """The MCP server (SDK low-level ``Server``) and its HTTP entry point."""

    def __init__(self, hub: Hub, *, allowed_hosts: list[str] | None = None) -> None:
        self.hub = hub
        self.server: Server[Any] = Server(
            "preloop",
            version=__version__,
            instructions=(
                "Preloop is an MCP firewall: tools are named <server>__<tool>; some calls "
                "are denied or wait for human approval by policy."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
        )
        hosts = allowed_hosts or ["127.0.0.1:*", "localhost:*", "[::1]:*"]
        self.manager = StreamableHTTPSessionManager(
            app=self.server,
            security_settings=TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=hosts,
                allowed_origins=[f"http://{h}" for h in hosts] + [f"https://{h}" for h in hosts],
            ),
        )
        self._session_keys: dict[str, str] = {}  # MCP session id -> the key that opened it
        self._synced_version: int | None = None  # the policy version the pool follows
        self._sync_lock = asyncio.Lock()
        # Input schemas of the tools as last listed, by exposed name. The SDK checks a
        # tools/call's ``Mcp-Param-*`` headers against them; without this lookup it would run
        # a whole tools/list (every upstream, the catalogue) before every call.
        self._schemas: dict[str, dict[str, Any]] = {}

    # -- HTTP --------------------------------------------------------------------------------

    async def handle(self, scope: Scope, receive: Any, send: Any) -> None:
        """Authenticate the bearer key, bind sessions to keys, then hand over to the SDK."""
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            caller = await self.hub.identity.authenticate(
                bearer_token(headers.get("authorization", ""))
            )
        except PreloopError as exc:
            await _json_error(send, status_of(exc), error_body(exc))
            return
        session = headers.get(SESSION_HEADER.decode())
        if session:
            owner = self._session_keys.get(session)
            if owner is None:  # never opened here, or forgotten: fail closed (as the SDK does)
                await _json_error(send, 404, error_body(NotFoundError("unknown MCP session")))
                return
            if owner != caller.key_id:
                denied = PermissionDeniedError("this MCP session belongs to another API key")
                await _json_error(send, status_of(denied), error_body(denied))
                return
        ended = asyncio.Event()
        state = {**(scope.get("state") or {}), CALLER_KEY: caller, ENDED_KEY: ended}
        scope = {**scope, "state": state}

        async def bind_session(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers") or []:
                    if name.lower() == SESSION_HEADER:
                        self._bind(value.decode("latin-1"), caller.key_id)
            await send(message)

        try:
            await self.manager.handle_request(scope, receive, bind_session)
        finally:
            ended.set()  # a handler still running now can no longer answer on this exchange

    async def _follow_policy(self, account_id: str) -> None:
        """After a policy apply, reconnect the pool to the servers it now declares."""
        active = await self.hub.policies.active(account_id)
        version = active[0].version if active is not None else None
        if version == self._synced_version:
            return
        async with self._sync_lock:
            if version == self._synced_version:
                return
            for problem in await sync_upstreams(self.hub):
                log.warning("%s", problem)
            self._synced_version = version

    def _bind(self, session: str, key_id: str) -> None:
        if session in self._session_keys:
            return
        if len(self._session_keys) >= MAX_BOUND_SESSIONS:  # forget the oldest binding
            del self._session_keys[next(iter(self._session_keys))]
        self._session_keys[session] = key_id

    # -- MCP handlers ------------------------------------------------------------------------

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        return self._schemas.get(name)

    async def _servers(self, caller: Caller) -> list[str]:
        # The pool holds the default account's servers only (server/bootstrap.py): another
        # account never reaches them, even through a server of the same name.
        if caller.account_id != (await self.hub.identity.default_account()).id:
            return []
        await self._follow_policy(caller.account_id)
        pooled = set(self.hub.pool.names())
        stored = await self.hub.storage.servers.list(caller.account_id)
        return sorted(s.name for s in stored if s.name in pooled)

    async def _list_tools(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        caller = caller_of(ctx)
        active = await self.hub.policies.active(caller.account_id)
        policy = active[1] if active is not None else None
        tools: list[dict[str, Any]] = []
        for server in await self._servers(caller):
            try:
                definitions = await self.hub.pool.list_tools(server)
            except PreloopError as exc:
                log.warning("MCP server %s: cannot list its tools: %s", server, exc.message)
                continue
            await self.hub.catalog.sync(caller.account_id, server, definitions)
            for definition in definitions:
                tool = str(definition["name"])
                shown = {**definition, "name": exposed_name(server, tool)}
                entry = policy.lookup(server, tool) if policy is not None else None
                mode = entry.tool.justification if entry is not None else JustificationMode.NONE
                if mode is not JustificationMode.NONE:
                    shown = with_justification(shown, mode)
                tools.append(shown)
                self._schemas[shown["name"]] = shown.get("inputSchema") or {}
        tools.append(STATUS_TOOL_DEFINITION)
        return types.ListToolsResult.model_validate({"tools": tools})

    async def _call_tool(
        self, ctx: Ctx, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        # The SDK validates every result against the negotiated era's schema anyway, so the
        # firewall's JSON dict goes through the typed model (content blocks, structured
        # content, isError and _meta all survive; see the losslessness tests).
        return types.CallToolResult.model_validate(await self._call(ctx, params))

    async def _call(self, ctx: Ctx, params: types.CallToolRequestParams) -> dict[str, Any]:
        caller = caller_of(ctx)
        arguments = dict(params.arguments or {})
        if params.name == STATUS_TOOL:
            approval_id = arguments.get("approval_id")
            if not isinstance(approval_id, str) or not approval_id:
                return error_result("get_approval_status needs an approval_id (a string).")
            return await self.hub.firewall.approval_status(caller, approval_id)
        target = split_name(params.name, await self._servers(caller))
        if target is None:
            return error_result(
                f"Unknown tool {params.name!r}: Preloop names tools <server>__<tool>; "
                "list the tools to see them."
            )
        server, tool = target
        record = await self.hub.storage.tools.get(caller.account_id, server, tool)
        if record is not None and is_blocked(record):
            message = (
                f"Refused by Preloop: the definition of tool {tool!r} on server {server!r} "
                "changed since it was approved. An administrator must review it and run "
                f"'preloop servers accept {server} {tool}'."
            )
            await self.hub.auditor.record(
                caller.account_id,
                "tool.call",
                caller.key_id,
                {
                    "server": server,
                    "tool": tool,
                    "args": {k: v for k, v in arguments.items() if k != JUSTIFICATION_ARG},
                    "session": _session_id(ctx),
                    "decision": "deny",
                    "rule": "tool-pinning",
                    "status": "blocked",
                },
            )
            return error_result(message, decision="deny", rule="tool-pinning")
        token = (ctx.meta or {}).get("progress_token")
        progress: Progress | None = None
        if token is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                await ctx.session.report_progress(value, total, message)

        return await self.hub.firewall.call(
            caller,
            CallRequest(server=server, tool=tool, arguments=arguments, session=_session_id(ctx)),
            progress=progress,
            gone=_exchange_ended(ctx),
        )


async def _json_error(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="preloop"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
