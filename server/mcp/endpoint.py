"""The inbound side of the MCP firewall: the MCP server agents connect to, at ``/mcp``.

    agent ─▶ /mcp (bearer key checked here, before the SDK; a POSTed JSON-RPC id that is no
          string or integer ─▶ -32600, HTTP 400, server/mcp/_ids.py)
          ─▶ a plain tools/call: answered here without the SDK (server/mcp/_fast.py)
          ─▶ anything else: the SDK session manager
          ─▶ tools/list: every upstream of the account, synced into the catalogue, names
             prefixed ``<server>__<tool>``, a ``justification`` property where the policy
             asks for one; the built-in tools (hub/builtin_tools, unprefixed; when the
             account has a tracker) and ``get_approval_status``
             (only the tools the key's allow-list matches, hub/allowlist.py, and that the
             policy may let run, CompiledPolicy.may_run: a hidden tool is still refused)
          ─▶ resources/read, prompts/get: a viewer or approver key ─▶ refused, audited,
             never forwarded (only agent and admin keys act; docs/decisions/0044)
          ─▶ tools/call: the tool-call pipeline (hub/tool_calls: role, allow-list, pinning,
             policy, approval, forward, record) ─▶ its outcome as the result
             (server/mcp/_answers.py)
          ─▶ resources, resource templates, prompts: every upstream of the account, passed
             through (audited, not decided by policy; docs/decisions/0006, server/mcp/_content.py)
          ◀─ list-changed notifications of the upstreams, relayed to every session of the
             account (server/mcp/_relay.py); a policy apply or rollback (on any replica) is
             a tools list change too: listing follows the policy

A call waiting for approval stops waiting (its request withdrawn) once its HTTP exchange has
ended: Preloop keeps no event store, so an answer can reach the agent only on the connection
that asked (docs/decisions/0009).

The upstream servers an account reaches come from hub/mcp_servers.py (the pool follows a
newly applied policy there). A result reaches the agent as the JSON bytes ``call_tool``
answers with: spliced into the JSON-RPC answer on the fast path (docs/decisions/0062); on the
SDK's path (a call the fast path leaves to it, and legacy SSE, ``sse.py``) validated into the
SDK's result model, which checks it against the negotiated era's schema. A held call's
answer never breaks the tool's output schema: for a tool with one it is ``isError`` without
``structuredContent`` (docs/decisions/0045).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.server import ServerRequestContext
from mcp.server.context import CallNext, HandlerResult
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from hub import __version__
from hub.allowlist import key_allows
from hub.builtin_tools.names import BUILTIN_SERVER, BUILTIN_TOOLS
from hub.errors import NotFoundError, PermissionDeniedError, PreloopError
from hub.events import SYSTEM_TOPIC, PolicyApplied, TrackersChanged
from hub.keys import ACTING_ROLES, Caller
from hub.passthrough import PROMPT_GET, RESOURCE_READ
from hub.policy.engine import CompiledPolicy
from hub.policy.model import JustificationMode
from hub.tool_calls import (
    JUSTIFICATION_ARG,
    KEY_ROLE_RULE,
    STATUS_TOOL,
    Held,
    Progress,
    exposed_name,
    role_refusal,
    split_name,
)
from hub.tool_results import ToolResult
from server.auth import bearer_token
from server.errors import error_body, status_of
from server.mcp._answers import answer, result_of
from server.mcp._content import UpstreamContent, shown
from server.mcp._fast import FastCalls
from server.mcp._held import unstructured
from server.mcp._ids import invalid_id, read_body, refuse, replay
from server.mcp._relay import ListChangedRelay, NotifyingServer
from server.mcp.upstream import McpUpstreamError

if TYPE_CHECKING:
    from server.hub_services import Hub

log = logging.getLogger("preloop.mcp")

CALLER_KEY = "preloop_caller"
ENDED_KEY = "preloop_exchange_ended"  # set once the HTTP exchange carrying a request ended
OPENED_KEY = "preloop_opened"  # the protocol version an initialize on this exchange agreed
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


def caller_of(ctx: Ctx) -> Caller:
    request = ctx.request
    scope = getattr(request, "scope", None) or {}
    caller = (scope.get("state") or {}).get(CALLER_KEY)
    if not isinstance(caller, Caller):  # the HTTP layer always sets it; fail closed
        raise MCPError(code=types.INVALID_REQUEST, message="not authenticated")
    return caller


def _account_of(ctx: Ctx) -> str | None:
    scope = getattr(ctx.request, "scope", None) or {}
    caller = (scope.get("state") or {}).get(CALLER_KEY)
    return caller.account_id if isinstance(caller, Caller) else None


def _upstream_failure(exc: PreloopError) -> MCPError:
    """The JSON-RPC error an agent gets when an upstream failed a read or a prompt: the
    upstream's own code when it answered with one, else an internal error; always the
    message naming the server."""
    code = exc.code if isinstance(exc, McpUpstreamError) else None
    if code is None or code in (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT):
        return MCPError(code=types.INTERNAL_ERROR, message=exc.message)
    return MCPError(code=code, message=exc.message, data=getattr(exc, "data", None))


def _exchange_ended(ctx: Ctx) -> Callable[[], Awaitable[Any]] | None:
    scope = getattr(ctx.request, "scope", None) or {}
    ended = (scope.get("state") or {}).get(ENDED_KEY)
    return ended.wait if isinstance(ended, asyncio.Event) else None


def _session_id(ctx: Ctx) -> str:
    headers = getattr(ctx.request, "headers", None)
    value = headers.get("mcp-session-id") if headers is not None else None
    if not value:  # legacy SSE (server/mcp/sse.py): the session is in the message URL
        query = getattr(ctx.request, "query_params", None)
        value = query.get("session_id") if query is not None else None
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


class McpEndpoint:
    """The MCP server (SDK low-level ``Server``) and its HTTP entry point."""

    def __init__(self, hub: Hub, *, allowed_hosts: list[str] | None = None) -> None:
        self.hub = hub
        self.content = UpstreamContent(hub.pool)
        self.relay = ListChangedRelay(_account_of)
        self.server = NotifyingServer(
            "preloop",
            version=__version__,
            instructions=(
                "Preloop is an MCP firewall: tools are named <server>__<tool>; some calls "
                "are denied or wait for human approval by policy."
            ),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            get_tool_input_schema=self._input_schema,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_subscriptions_listen=self._listen,
        )
        self.server.middleware.append(self.relay.remember)
        self.server.middleware.append(_note_initialized)
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
        # Input schemas of the tools as last listed, by exposed name. The SDK checks a
        # tools/call's ``Mcp-Param-*`` headers against them; without this lookup it would run
        # a whole tools/list (every upstream, the catalogue) before every call.
        self._schemas: dict[str, dict[str, Any]] = {}
        # Whether each tool, as last listed, has an output schema (server/mcp/_held.py).
        self._structured: dict[str, bool] = {}
        self._tasks: anyio.abc.TaskGroup | None = None  # relays list changes, while running
        self.fast = FastCalls(
            self.call_tool,
            self.manager,
            self._input_schema,
            lambda: self.server.server_info_stamp,
        )

    @asynccontextmanager
    async def run(self) -> AsyncIterator[None]:
        """Serve (the SDK session manager) and relay the upstreams' list changes meanwhile."""
        async with anyio.create_task_group() as tasks, self.manager.run():
            self._tasks = tasks
            unsubscribe = self.hub.pool.subscribe_list_changed(self._upstream_changed)
            await tasks.start(self._policy_applies)
            try:
                yield
            finally:
                unsubscribe()
                self._tasks = None
                self.relay.close()
                tasks.cancel_scope.cancel()

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
        if scope.get("method") == "POST":
            received, body = await read_body(receive, self.manager.max_request_body_size)
            if body is not None:
                if await self.fast.answer(caller, headers, scope["headers"], body, receive, send):
                    return
                problem = invalid_id(body)
                if problem is not None:
                    await refuse(send, problem)
                    return
            receive = replay(received, receive)
        ended = asyncio.Event()
        opened: dict[str, str] = {}
        state = {**(scope.get("state") or {}), CALLER_KEY: caller, ENDED_KEY: ended}
        scope = {**scope, "state": {**state, OPENED_KEY: opened}}

        async def bind_session(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers") or []:
                    if name.lower() == SESSION_HEADER:
                        opened["session"] = value.decode("latin-1")
                        self._bind(opened["session"], caller.key_id)
            await send(message)

        try:
            await self.manager.handle_request(scope, receive, bind_session)
        finally:
            ended.set()  # a handler still running now can no longer answer on this exchange
        if "version" in opened and "session" in opened:  # the fast path may serve the session
            self.fast.ready(opened["session"], opened["version"], MAX_BOUND_SESSIONS)

    def _bind(self, session: str, key_id: str) -> None:
        if session in self._session_keys:
            return
        if len(self._session_keys) >= MAX_BOUND_SESSIONS:  # forget the oldest binding
            del self._session_keys[next(iter(self._session_keys))]
        self._session_keys[session] = key_id

    async def _upstream_changed(self, server: str, kind: str) -> None:
        """An upstream's ``kind`` list changed: forget what is cached about it, tell agents."""
        if kind == "tools":
            prefix = exposed_name(server, "")
            for name in [name for name in self._schemas if name.startswith(prefix)]:
                self._schemas.pop(name, None)
        elif kind == "resources":
            self.content.forget(server)
        # The pool holds the default account's servers only (see _servers).
        account_id = (await self.hub.identity.default_account()).id
        if self._tasks is not None:  # never hold up the upstream's session
            self._tasks.start_soon(self.relay.publish, account_id, kind)
        else:
            await self.relay.publish(account_id, kind)

    async def _policy_applies(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """A policy apply or rollback (on any replica: the bus crosses processes) may change
        which tools are listed (CompiledPolicy.may_run, justification properties): tell the
        account's agents that its tools list changed."""
        started = False
        try:
            async with self.hub.bus.subscribe(SYSTEM_TOPIC) as events:
                task_status.started()
                started = True
                async for event in events:
                    if isinstance(event, PolicyApplied):  # a PolicyRolledBack too
                        self.hub.policies.forget(event.account_id)  # listed from the new one
                        await self.relay.publish(event.account_id, "tools")
                    elif isinstance(event, TrackersChanged):  # the built-ins listed follow
                        await self.relay.publish(event.account_id, "tools")
        except Exception:  # advisory: serving goes on without it
            log.exception("policy applies are not relayed to MCP agents")
        finally:
            if not started:
                task_status.started()

    # -- MCP handlers ------------------------------------------------------------------------

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        return self._schemas.get(name)

    async def _servers(self, caller: Caller) -> list[str]:
        # The default account's servers only, the pool following the policy (hub/mcp_servers.py).
        return await self.hub.mcp_servers.names(caller.account_id)

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
                if not key_allows(caller, exposed_name(server, tool)):
                    continue
                if policy is None or not policy.may_run(server, tool):
                    continue  # every call would be denied: not worth the agent's context
                shown = {**definition, "name": exposed_name(server, tool)}
                tools.append(self._listed(policy, server, tool, shown))
        for definition in await self._builtin_tools(caller):
            tool = str(definition["name"])
            if policy is None or not policy.may_run(BUILTIN_SERVER, tool):
                continue
            tools.append(self._listed(policy, BUILTIN_SERVER, tool, definition))
        tools.append(STATUS_TOOL_DEFINITION)
        return types.ListToolsResult.model_validate({"tools": tools})

    def _listed(
        self, policy: CompiledPolicy, server: str, tool: str, shown: dict[str, Any]
    ) -> dict[str, Any]:
        """A listed tool's definition, with the ``justification`` property its policy entry
        asks for; its schema remembered for calls (``Mcp-Param-*`` checks, held answers)."""
        entry = policy.lookup(server, tool)
        mode = entry.tool.justification if entry is not None else JustificationMode.NONE
        if mode is not JustificationMode.NONE:
            shown = with_justification(shown, mode)
        self._schemas[shown["name"]] = shown.get("inputSchema") or {}
        self._structured[shown["name"]] = shown.get("outputSchema") is not None
        return shown

    async def _builtin_tools(self, caller: Caller) -> list[dict[str, Any]]:
        """The built-in tools the caller's key may see (docs/decisions/0091)."""
        try:
            definitions = await self.hub.builtin_tools.listed(caller.account_id)
        except PreloopError as exc:
            log.warning("built-in tools not listed: %s", exc.message)
            return []
        return [d for d in definitions if key_allows(caller, str(d["name"]))]

    async def _call_tool(
        self, ctx: Ctx, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        # The SDK validates every result against the negotiated era's schema anyway, so the
        # result's JSON goes through the typed model (content blocks, structured content,
        # isError and _meta all survive; see the losslessness tests).
        token = (ctx.meta or {}).get("progress_token")
        progress: Progress | None = None
        if token is not None:

            async def progress(value: float, total: float | None, message: str | None) -> None:
                await ctx.session.report_progress(value, total, message)

        result = await self.call_tool(
            caller_of(ctx),
            params.name,
            dict(params.arguments or {}),
            session=_session_id(ctx),
            progress=progress,
            gone=_exchange_ended(ctx),
        )
        return types.CallToolResult.model_validate_json(result.json)

    async def call_tool(
        self,
        caller: Caller,
        name: str,
        arguments: dict[str, Any],
        *,
        session: str = "",
        progress: Progress | None = None,
        gone: Callable[[], Awaitable[Any]] | None = None,
    ) -> ToolResult:
        """One ``tools/call`` by ``caller`` (however it reached the edge), answered as the
        result to send: the upstream's own, or Preloop's refusal or held answer (which never
        breaks the tool's output schema)."""
        outcome = await self.hub.tool_calls.call(
            caller, name, arguments, session=session, progress=progress, gone=gone
        )
        if isinstance(outcome, Held) and await self._has_output_schema(caller, name):
            return ToolResult.of(unstructured(answer(outcome)))
        return result_of(outcome)

    async def _has_output_schema(self, caller: Caller, name: str) -> bool:
        """Whether the tool agents know as ``name`` declares an output schema: as last
        listed, else as its upstream lists it now; when that cannot be told, assume so."""
        if name == STATUS_TOOL or name in BUILTIN_TOOLS:
            return False  # Preloop's own tools declare no output schema
        known = self._structured.get(name)
        if known is not None:
            return known
        try:  # the call is held already: a failure here must not lose its approval id
            target = split_name(name, await self._servers(caller))
            if target is None:
                return True
            definitions = await self.hub.pool.list_tools(target[0])
        except PreloopError:
            return True
        for definition in definitions:
            if definition.get("name") == target[1]:
                return definition.get("outputSchema") is not None
        return True

    # -- resources, resource templates, prompts (docs/decisions/0006) ------------------------

    async def _list_resources(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        listed = await self.content.list_resources(await self._servers(caller_of(ctx)))
        return types.ListResourcesResult.model_validate({"resources": shown(listed, "uri")})

    async def _list_resource_templates(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        listed = await self.content.list_templates(await self._servers(caller_of(ctx)))
        templates = shown(listed, "uriTemplate")
        return types.ListResourceTemplatesResult.model_validate({"resourceTemplates": templates})

    async def _read_resource(
        self, ctx: Ctx, params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        caller, uri, session = caller_of(ctx), str(params.uri), _session_id(ctx)
        if not caller.has(*ACTING_ROLES):
            message = role_refusal(caller, "read resources from MCP servers")
            attempt = {"server": None, "uri": uri, "session": session, "rule": KEY_ROLE_RULE}
            await self.hub.passthrough.refused(caller, RESOURCE_READ, attempt, message)
            raise MCPError(code=types.INVALID_REQUEST, message=message)
        try:
            server, upstream_uri = await self.content.route(uri, await self._servers(caller))
        except PreloopError as exc:
            attempt = {"server": None, "uri": uri, "session": session}
            await self.hub.passthrough.refused(caller, RESOURCE_READ, attempt, exc.message)
            raise MCPError(code=types.INVALID_PARAMS, message=exc.message) from exc
        try:
            result = await self.hub.passthrough.read_resource(
                caller, server, upstream_uri, session=session
            )
        except PreloopError as exc:
            raise _upstream_failure(exc) from exc
        return types.ReadResourceResult.model_validate(result)

    async def _list_prompts(
        self, ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        listed = await self.content.list_prompts(await self._servers(caller_of(ctx)))
        prompts = [
            {**prompt, "name": exposed_name(server, str(prompt.get("name")))}
            for server, items in listed.items()
            for prompt in items
        ]
        return types.ListPromptsResult.model_validate({"prompts": prompts})

    async def _get_prompt(
        self, ctx: Ctx, params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        caller, session = caller_of(ctx), _session_id(ctx)
        arguments = dict(params.arguments) if params.arguments is not None else None
        if not caller.has(*ACTING_ROLES):
            message = role_refusal(caller, "get prompts from MCP servers")
            attempt = {"server": None, "prompt": params.name, "args": arguments or {}}
            await self.hub.passthrough.refused(
                caller, PROMPT_GET, {**attempt, "session": session, "rule": KEY_ROLE_RULE}, message
            )
            raise MCPError(code=types.INVALID_REQUEST, message=message)
        target = split_name(params.name, await self._servers(caller))
        if target is None:
            message = (
                f"Unknown prompt {params.name!r}: Preloop names prompts <server>__<prompt>; "
                "list the prompts to see them."
            )
            attempt = {"server": None, "prompt": params.name, "args": arguments or {}}
            await self.hub.passthrough.refused(
                caller, PROMPT_GET, {**attempt, "session": session}, message
            )
            raise MCPError(code=types.INVALID_PARAMS, message=message)
        server, prompt = target
        try:
            result = await self.hub.passthrough.get_prompt(
                caller, server, prompt, arguments, session=session
            )
        except PreloopError as exc:
            raise _upstream_failure(exc) from exc
        return types.GetPromptResult.model_validate(result)

    async def _listen(
        self, ctx: Ctx, params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """``subscriptions/listen`` (2026-07-28): the account's list-change stream."""
        return await self.relay.listen(caller_of(ctx).account_id, ctx, params)


async def _note_initialized(ctx: Ctx, call_next: CallNext) -> HandlerResult:
    """Server middleware: note the version an ``initialize`` agreed, for McpEndpoint.handle."""
    result = await call_next(ctx)
    if ctx.method == "initialize" and isinstance(result, dict):
        opened = (getattr(ctx.request, "scope", None) or {}).get("state", {}).get(OPENED_KEY)
        version = result.get("protocolVersion")
        if isinstance(opened, dict) and isinstance(version, str):
            opened["version"] = version
    return result


async def _json_error(send: Any, status: int, body: dict[str, Any]) -> None:
    import json

    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="preloop"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
