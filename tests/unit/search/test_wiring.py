"""``PRELOOP_SEARCH_EMBEDDER`` → the embedder (server/search_wiring.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, cast

import pytest

from hub.errors import ConfigError
from hub.search.embedders import HashingEmbedder
from hub.settings import load_settings
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
