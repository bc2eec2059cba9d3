"""The background indexer's loop (hub/search/indexer.py): it embeds new and changed issues
every ``PRELOOP_SEARCH_INDEX_SECONDS`` (at once again after a full batch, later after a
failure) for as long as the server runs, off the request path. ``Hub.indexer.kick()`` wakes it.

Every replica runs it; two replicas embedding the same issue write the same vector (the store
keeps one per issue and model), so the cost of a race is one embedding, never a wrong row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from server.hub_services import Hub


@contextlib.asynccontextmanager
async def indexer_running(hub: Hub, *, every: float) -> AsyncIterator[None]:
    """Run the indexer in the background for the duration of the block (nothing when the hub
    has no indexer: no tracker storage)."""
    if hub.indexer is None:
        yield
        return
    task = asyncio.create_task(hub.indexer.run(every), name="search-indexer")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
