"""Resources and prompts of the upstreams, passed through under the same audit as tool calls.

    resources/read ─▶ the upstream that serves the URI ─▶ one `resource.read` event ─▶ result
    prompts/get    ─▶ the upstream that serves the prompt ─▶ one `prompt.get` event ─▶ result
    not routable (unknown URI or prompt) ─▶ one event, status `refused` ─▶ the error

Every attempt is recorded (arguments redacted by the :class:`~hub.auditing.Auditor`) before the
agent gets its answer. The policy engine decides tool calls only: reading a resource or getting
a prompt is allowed for any authenticated key of the account (docs/decisions/0006).

Results are the upstream's JSON dicts, untouched; the edge (server/mcp) routes requests to an
upstream and converts results to and from the wire.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from hub.auditing import Auditor
from hub.errors import PreloopError
from hub.keys import Caller

RESOURCE_READ = "resource.read"
PROMPT_GET = "prompt.get"
log = logging.getLogger("preloop.passthrough")


class ContentUpstream(Protocol):
    """What the pass-through needs from the upstream side (server/mcp implements it)."""

    async def read_resource(self, name: str, uri: str) -> dict[str, Any]: ...

    async def get_prompt(
        self, name: str, prompt: str, arguments: dict[str, str] | None = None
    ) -> dict[str, Any]: ...


class PassThroughService:
    def __init__(self, *, auditor: Auditor, upstream: ContentUpstream) -> None:
        self._auditor = auditor
        self._upstream = upstream

    async def read_resource(
        self, caller: Caller, server: str, uri: str, *, session: str = ""
    ) -> dict[str, Any]:
        """The upstream's ``ReadResourceResult``; a :class:`PreloopError` (recorded) when the
        read failed."""
        audit: dict[str, Any] = {"server": server, "uri": uri, "session": session}
        return await self._forward(
            caller, RESOURCE_READ, audit, lambda: self._upstream.read_resource(server, uri)
        )

    async def get_prompt(
        self,
        caller: Caller,
        server: str,
        prompt: str,
        arguments: dict[str, str] | None,
        *,
        session: str = "",
    ) -> dict[str, Any]:
        """The upstream's ``GetPromptResult``; a :class:`PreloopError` (recorded) when the
        request failed."""
        audit: dict[str, Any] = {
            "server": server,
            "prompt": prompt,
            "args": dict(arguments or {}),
            "session": session,
        }
        return await self._forward(
            caller,
            PROMPT_GET,
            audit,
            lambda: self._upstream.get_prompt(server, prompt, arguments),
        )

    async def refused(self, caller: Caller, kind: str, data: dict[str, Any], reason: str) -> None:
        """Record an attempt that reached no upstream (``kind`` is ``resource.read`` or
        ``prompt.get``), with why."""
        audit = {**data, "status": "refused", "error": reason, "duration_ms": 0.0}
        try:
            await self._auditor.record(caller.account_id, kind, caller.key_id, audit)
        except PreloopError as exc:  # nothing was forwarded: the refusal still goes out
            log.warning("%s record of a refused request was not written: %s", kind, exc.message)

    async def _forward(
        self,
        caller: Caller,
        kind: str,
        audit: dict[str, Any],
        send: Callable[[], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = await send()
        except PreloopError as exc:
            audit |= {"status": "upstream_error", "error": exc.message}
            await self._record(caller, kind, audit, started)
            raise
        except asyncio.CancelledError:
            audit["status"] = "cancelled"
            # Shielded: a cancelled task may be cancelled again at its next await.
            await asyncio.shield(self._record(caller, kind, audit, started))
            raise
        audit["status"] = "ok"
        await self._record(caller, kind, audit, started)
        return result

    async def _record(
        self, caller: Caller, kind: str, audit: dict[str, Any], started: float
    ) -> None:
        audit["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        await self._auditor.record(caller.account_id, kind, caller.key_id, audit)
