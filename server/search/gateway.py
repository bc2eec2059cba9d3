"""The search indexer's embedder through the hub's own model gateway, for the composition
root: ``gateway_embedder(hub, model, dimensions)`` for
``PRELOOP_SEARCH_EMBEDDER=gateway:MODEL[@DIMS]``.

Its requests go through ``ModelGatewayOnFirstUse(hub)`` (the gateway is built on the first
one) and are accounted to principal and key ``indexer`` of the hub's default account, whose id
is read from the store on the first request, so building the embedder needs no database and
no event loop (decision 0103)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.model_gateway.records import Attribution
from hub.search.gateway_embedder import DEFAULT_BATCH, GatewayEmbedder, indexer_attribution

if TYPE_CHECKING:
    from server.hub_services import Hub


def gateway_embedder(
    hub: Hub, model: str, dimensions: int | None, *, batch: int = DEFAULT_BATCH
) -> GatewayEmbedder:
    """``GatewayEmbedder`` for ``model`` through ``hub``'s gateway, paid by the indexer;
    ``ConfigError`` when ``dimensions`` is ``None`` and the model's size is not known."""
    from server.hub_services import ModelGatewayOnFirstUse

    async def indexer() -> Attribution:
        account = await hub.identity.default_account()
        return indexer_attribution(account.id)

    return GatewayEmbedder(ModelGatewayOnFirstUse(hub), model, dimensions, indexer, batch=batch)
