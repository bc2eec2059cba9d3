"""``PRELOOP_SEARCH_EMBEDDER`` → the embedder (server/search_wiring.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest

from hub.errors import ConfigError
from hub.model_gateway.records import Attribution
from hub.search.embedders import HashingEmbedder
from hub.search.gateway_embedder import GatewayEmbedder
from hub.settings import SearchSettings, Settings, load_settings
from server.search_wiring import parse, search_embedder

if TYPE_CHECKING:
    from server.hub_services import Hub

NO_HUB = cast("Hub", None)  # the local embedders need nothing of the hub


def embedder_of(tmp_path: Path, spec: str) -> object:
    settings = load_settings({"PRELOOP_SEARCH_EMBEDDER": spec}, env_file=tmp_path / "no.env")
    return search_embedder(settings, NO_HUB)


def test_the_default_is_the_hashing_embedder_of_512_dimensions(tmp_path: Path) -> None:
    settings = load_settings({}, env_file=tmp_path / "no.env")

    embedder = search_embedder(settings, NO_HUB)

    assert isinstance(embedder, HashingEmbedder)
    assert "local:hashing-v1@512" == str(embedder.identity)


def test_the_hashing_embedder_takes_its_dimensions(tmp_path: Path) -> None:
    embedder = embedder_of(tmp_path, "local:hashing-v1@256")

    assert isinstance(embedder, HashingEmbedder)
    assert "local:hashing-v1@256" == str(embedder.identity)


def test_an_unknown_local_model_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        embedder_of(tmp_path, "local:word2vec")

    assert raised.value.message.startswith("PRELOOP_SEARCH_EMBEDDER: no local embedder")
    assert "'word2vec'" in raised.value.message


def test_minilm_has_384_dimensions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        embedder_of(tmp_path, "local:minilm@512")

    assert "384" in raised.value.message


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("local:hashing-v1", ("local", "hashing-v1", None)),
        ("local:hashing-v1@64", ("local", "hashing-v1", 64)),
        ("gateway:text-embedding-3-small@256", ("gateway", "text-embedding-3-small", 256)),
        ("gateway:org/embed-v2", ("gateway", "org/embed-v2", None)),
    ],
)
def test_parse(spec: str, parsed: tuple[str, str, int | None]) -> None:
    assert parsed == parse(spec)


class FakeGateway:
    def __init__(self) -> None:
        self.asked: list[tuple[Attribution, dict[str, Any]]] = []

    async def embed(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        self.asked.append((who, body))
        data = [{"index": i, "embedding": [1.0, 0.0]} for i in range(len(body["input"]))]
        return {"data": data}


class FakeIdentity:
    async def default_account(self) -> SimpleNamespace:
        return SimpleNamespace(id="acct_1")


async def test_a_gateway_embedder_asks_the_hub_gateway_as_the_default_account_indexer(
    tmp_path: Path,
) -> None:
    gateway = FakeGateway()
    hub = cast("Hub", SimpleNamespace(identity=FakeIdentity(), model_gateway=gateway))
    settings = load_settings(
        {"PRELOOP_SEARCH_EMBEDDER": "gateway:embed-model@2"}, env_file=tmp_path / "no.env"
    )

    embedder = search_embedder(settings, hub)
    vectors = await embedder.embed(["one", "two"])

    assert isinstance(embedder, GatewayEmbedder)
    assert "gateway:embed-model@2" == str(embedder.identity)
    assert [(1.0, 0.0), (1.0, 0.0)] == vectors
    ((who, body),) = gateway.asked
    assert ("acct_1", "indexer", "indexer") == (who.account_id, who.api_key_id, who.principal)
    assert ("embed-model", ["one", "two"], 2) == (body["model"], body["input"], body["dimensions"])


def test_a_gateway_model_of_unknown_size_needs_its_dimensions(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        embedder_of(tmp_path, "gateway:embed-model")

    assert "gateway:embed-model@DIMS" in raised.value.message


def test_an_unknown_provider_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        search_embedder(Settings(search=SearchSettings(embedder="remote:x")), NO_HUB)

    assert raised.value.message.startswith("PRELOOP_SEARCH_EMBEDDER: unknown embedder provider")
