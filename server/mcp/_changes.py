"""List-changed notifications from an upstream, handed to the pool's ``on_list_changed``.

In the handshake era a server sends ``notifications/*/list_changed`` whenever it likes. At
2026-07-28 they come only on a ``subscriptions/listen`` stream the client opened, so the
supervisor holds one open for as long as the session lives. Either way they reach
:meth:`ChangeListener.on_message` as SDK notifications.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp_types as types
from mcp import Client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.exceptions import MCPError

from server.mcp._link import Link, describe, log

if TYPE_CHECKING:
    from server.mcp._pool_types import ListChangedCallback, PoolOptions

_LIST_CHANGED: dict[type[Any], str] = {
    types.ToolListChangedNotification: "tools",
    types.ResourceListChangedNotification: "resources",
    types.PromptListChangedNotification: "prompts",
}


class ChangeListener:
    """One upstream's notification handler and change subscription."""

    def __init__(
        self, name: str, options: PoolOptions, on_list_changed: ListChangedCallback | None
    ) -> None:
        self.name = name
        self._options = options
        self._on_list_changed = on_list_changed

    async def listen(
        self,
        client: Client,
        link: Link,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """At 2026-07-28, list-changed notifications come only on a ``subscriptions/listen``
        stream; hold one open (and reopen it if it drops). Its events reach
        ``on_message`` like the handshake era's notifications do."""
        capabilities = client.server_capabilities
        tools = bool(capabilities.tools and capabilities.tools.list_changed)
        prompts = bool(capabilities.prompts and capabilities.prompts.list_changed)
        resources = bool(capabilities.resources and capabilities.resources.list_changed)
        started = False
        failures = 0
        try:
            while (tools or prompts or resources) and not link.ended.is_set():
                opened = anyio.current_time()
                try:
                    async with client.listen(
                        tools_list_changed=tools,
                        prompts_list_changed=prompts,
                        resources_list_changed=resources,
                    ) as subscription:
                        if not started:
                            started = True
                            task_status.started()
                        async for _event in subscription:
                            failures = 0  # delivered to _on_message as a notification
                except SubscriptionLost:
                    pass
                except (MCPError, ListenNotSupportedError, TimeoutError) as exc:
                    log.warning(
                        "MCP server '%s': cannot listen for list changes: %s",
                        self.name,
                        describe(exc),
                    )
                    return
                # The stream ended while the session lives on: listen again, backing off.
                if anyio.current_time() - opened >= self._options.backoff_max:
                    failures = 0
                failures += 1
                delay = min(
                    self._options.backoff_max, self._options.backoff_initial * 2 ** (failures - 1)
                )
                log.info("MCP server '%s': change subscription ended; listening again", self.name)
                with anyio.move_on_after(delay):
                    await link.ended.wait()
        finally:
            if not started:
                task_status.started()

    async def on_message(self, message: Any) -> None:
        if isinstance(message, Exception):
            log.warning("MCP server '%s': transport error: %s", self.name, message)
            return
        if isinstance(message, types.LoggingMessageNotification):
            log.info("[%s] %s: %s", self.name, message.params.level, message.params.data)
            return
        kind = _LIST_CHANGED.get(type(message))
        if kind is None or self._on_list_changed is None:
            return
        try:
            await self._on_list_changed(self.name, kind)
        except Exception:
            log.exception("on_list_changed for MCP server '%s' raised", self.name)
