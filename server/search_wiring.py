"""Search in the composition root: the embedder ``PRELOOP_SEARCH_EMBEDDER`` names, and the
hub's ``issue_search`` and ``indexer`` over the tracker storage (issue 16).

    local:hashing-v1[@DIMS]   HashingEmbedder (offline, lexical; 512 dimensions by default)
    local:minilm              server.search.minilm.MiniLMEmbedder (the local-embeddings extra)
    gateway:MODEL[@DIMS]      hub.search.gateway_embedder.GatewayEmbedder: MODEL through the
                              hub's own model gateway, accounted to the principal ``indexer``
                              of the default account (server/search/gateway.py)

A setting that names no embedder, or one whose extra is not installed, is a ``ConfigError``
naming the setting: the server does not start with a search it cannot serve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.errors import ConfigError
from hub.search.embedders import Embedder, HashingEmbedder
from hub.search.indexer import Indexer
from hub.search.service import IssueSearch
from hub.settings import Settings

if TYPE_CHECKING:
    from server.hub_services import Hub

SETTING = "PRELOOP_SEARCH_EMBEDDER"
MINILM = "minilm"
LOCAL_MODELS = (HashingEmbedder.MODEL, MINILM)


def parse(spec: str) -> tuple[str, str, int | None]:
    """``provider:model[@dims]`` → (provider, model, dims or ``None``)."""
    provider, _, rest = spec.strip().partition(":")
    model, at, dims = rest.rpartition("@")
    if not at:
        model, dims = rest, ""
    if not provider or not model or (dims and not dims.isdigit()):
        raise ConfigError(f"{SETTING}: {spec!r} is not provider:model[@dims]")
    return provider, model, int(dims) if dims else None


def search_embedder(settings: Settings, hub: Hub) -> Embedder:
    """The embedder ``settings.search.embedder`` names."""
    provider, model, dims = parse(settings.search.embedder)
    if provider == "local" and model == HashingEmbedder.MODEL:
        return HashingEmbedder(dims) if dims else HashingEmbedder()
    if provider == "local" and model == MINILM:
        from server.search.minilm import DIMENSIONS, MiniLMEmbedder  # torch: only when named

        if dims not in (None, DIMENSIONS):
            raise ConfigError(f"{SETTING}: local:minilm has {DIMENSIONS} dimensions, not {dims}")
        return MiniLMEmbedder()
    if provider == "local":
        raise ConfigError(
            f"{SETTING}: no local embedder {model!r} (local:hashing-v1[@DIMS] or local:minilm)"
        )
    if provider == "gateway":
        from server.search.gateway import gateway_embedder

        return gateway_embedder(hub, model, dims)
    raise ConfigError(
        f"{SETTING}: unknown embedder provider {provider!r} (local:hashing-v1, local:minilm "
        "or gateway:MODEL[@DIMS])"
    )


def build_search(hub: Hub) -> None:
    """``hub.search_embedder`` from the settings; ``hub.issue_search`` and ``hub.indexer``
    over the tracker storage (both ``None`` without one)."""
    hub.search_embedder = search_embedder(hub.settings, hub)
    storage = hub.trackers
    if storage is None:
        hub.issue_search, hub.indexer = None, None
        return
    hub.issue_search = IssueSearch(storage, hub.search_embedder)
    hub.indexer = Indexer(
        storage, hub.search_embedder, hub.clock, batch=hub.settings.search.index_batch
    )
