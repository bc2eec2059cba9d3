"""The server's own ``system`` events: a replica starting and stopping, and the state changes
of its upstream MCP servers.

    lifespan start ─▶ ServerStarted ─────────────────────────────┐
    UpstreamPool supervisor ─▶ watch_states (sync) ─▶ queue ─▶ drain task ─▶ bus "system"
    lifespan end ─▶ ServerStopping ──────────────────────────────┘

These facts are not in the audit log (a flapping upstream would flood it, and a replica's life
is not an account's business record), so the server publishes them itself. They belong to the
default account: the pool holds the default account's servers only (hub/mcp_servers.py), and
the replicas are the installation's, whose operator is that account. The supervisor reports
synchronously from its own task, so changes are queued and published by one task, in order.
The audited system facts (policy applied, tool blocked, notification failed) are published by
the auditor (hub/system_events.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator

from hub import __version__
from hub.events import (
    SYSTEM_TOPIC,
    ServerStarted,
    ServerStopping,
    SystemEvent,
    UpstreamStateChanged,
)
from hub.redact import redact_text
from server.hub_services import Hub
from server.mcp.upstream import UpstreamStateChange

log = logging.getLogger("preloop.server")

MAX_ERROR_CHARS = 1000  # an upstream's error may end with its stderr: the event stays small
DRAIN_SECONDS = 5.0  # at shutdown, for the changes still queued


def replica_name() -> str:
    """This process as the events name it: ``<hostname>:<pid>``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def upstream_event(
    change: UpstreamStateChange, *, account_id: str, hub: Hub, replica: str
) -> UpstreamStateChanged:
    error = change.error
    if error is not None:
        error = redact_text(error)[:MAX_ERROR_CHARS]
    return UpstreamStateChanged(
        account_id=account_id,
        at=hub.clock.now(),
        server=change.server,
        state=change.state,
        previous_state=change.previous_state,
        error=error,
        restarts=change.restarts,
        retry_in=change.retry_in,
        replica=replica,
    )


@contextlib.asynccontextmanager
async def system_events_running(hub: Hub) -> AsyncIterator[None]:
    """Publish ``server.started`` now, upstream state changes while running, and
    ``server.stopping`` at the end."""
    account_id = (await hub.identity.default_account()).id
    replica = replica_name()
    queue: asyncio.Queue[SystemEvent | None] = asyncio.Queue()

    def changed(change: UpstreamStateChange) -> None:
        event = upstream_event(change, account_id=account_id, hub=hub, replica=replica)
        queue.put_nowait(event)

    async def drain() -> None:
        while (event := await queue.get()) is not None:
            await _publish(hub, event)

    def server_event(kind: type[ServerStarted | ServerStopping]) -> SystemEvent:
        host, pid = socket.gethostname(), os.getpid()
        return kind(
            account_id=account_id,
            at=hub.clock.now(),
            replica=replica,
            hostname=host,
            pid=pid,
            version=__version__,
        )

    unwatch = hub.pool.watch_states(changed)
    draining = asyncio.create_task(drain(), name="system-events")
    queue.put_nowait(server_event(ServerStarted))
    try:
        yield
    finally:
        unwatch()
        queue.put_nowait(server_event(ServerStopping))
        queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(draining), DRAIN_SECONDS)
        except TimeoutError:
            log.warning("system events still queued at shutdown were dropped")
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining


async def _publish(hub: Hub, event: SystemEvent) -> None:
    """A system event that cannot be published is logged: it never stops the server."""
    try:
        await hub.bus.publish(SYSTEM_TOPIC, event)
    except Exception:
        log.exception("system event %s not published", type(event).__name__)
