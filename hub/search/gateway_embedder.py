"""``GatewayEmbedder``: an ``Embedder`` that asks an embeddings model through Preloop's own
model gateway, in process (``ModelGateway.embed``), so custody, routing, budgets and the usage
ledger apply to issue text as they do to chat (decision 0103).

    texts ─▶ (a blank one: the zero vector) ─▶ batches of at most ``batch``
          ─▶ gateway.embed(who, {"model", "input": [...], "encoding_format": "float",
                                 "dimensions"?})
          ─▶ checked ─▶ unit vectors, in order

Every answer is checked before a vector is kept: a ``data`` list of exactly one embedding per
input, each ``index`` present once, every vector of the identity's dimensions and every number
finite. Anything else (a refusal, a budget stop, a provider error, a garbage answer) raises
``EmbeddingError`` naming the model, so the indexer retries later and never stores a vector that
does not belong to its identity.

Its identity is ``gateway:MODEL@DIMS``, known when the embedder is built (the indexer asks
for stale vectors by it before it embeds anything). ``dimensions`` given: it is sent with every
request (``text-embedding-3-*`` shorten their vectors to it) and checked on every answer. Not
given: the model's native size from ``KNOWN_DIMENSIONS`` (nothing is sent, the model answers its
own size), and a model not in that table is a ``ConfigError`` that says to write
``gateway:MODEL@DIMS`` (decision 0103). ``probe()`` checks, once, that the model answers
vectors of that size.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from hub.errors import ConfigError, PreloopError
from hub.model_gateway.records import Attribution
from hub.search.embedders import EmbedderIdentity, Vector, normalised

PROVIDER = "gateway"
DEFAULT_BATCH = 256  # inputs per request; OpenAI takes up to 2,048, local servers often fewer
INDEXER = "indexer"
# Native sizes of common embeddings models, for ``gateway:MODEL`` without ``@DIMS``; matched on
# the model id or its last ``/`` part (``openai/text-embedding-3-small``, ``BAAI/bge-m3``).
KNOWN_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "nomic-embed-text": 768,
    "mxbai-embed-large": 1024,
    "all-minilm": 384,
    "all-minilm-l6-v2": 384,
    "all-MiniLM-L6-v2": 384,
    "bge-small-en-v1.5": 384,
    "bge-base-en-v1.5": 768,
    "bge-large-en-v1.5": 1024,
    "bge-m3": 1024,
}


class EmbeddingError(PreloopError):
    """An embeddings model refused, failed or answered something unusable. The message names
    the model; its ``__cause__`` is the gateway's own error, when there was one."""

    title = "Embedding failed"


class Embeddings(Protocol):
    """What the embedder needs of the gateway: ``hub.model_gateway.ports.ModelGateway.embed``."""

    async def embed(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]: ...


def known_dimensions(model: str) -> int | None:
    """The native dimensions of a well-known embeddings model, or ``None``."""
    name = model.rsplit("/", 1)[-1].split(":", 1)[0]  # Ollama's "nomic-embed-text:latest"
    return KNOWN_DIMENSIONS.get(model, KNOWN_DIMENSIONS.get(name))


def indexer_attribution(account_id: str) -> Attribution:
    """Who pays for the background indexer's embeddings: principal and key ``indexer`` of the
    account, which is the default account's id (``(await hub.identity.default_account()).id``,
    not its name ``default``) in a single-tenant hub."""
    return Attribution(account_id=account_id, api_key_id=INDEXER, principal=INDEXER)


class GatewayEmbedder:
    """Implements ``hub.search.embedders.Embedder`` through the model gateway. ``who`` is whom
    its requests are accounted to, or an async function answering it, called once on the first
    request (the default account's id is only known from the store:
    ``server.search.gateway.gateway_embedder`` builds one for a hub)."""

    def __init__(
        self,
        gateway: Embeddings,
        model: str,
        dimensions: int | None,
        who: Attribution | Callable[[], Awaitable[Attribution]],
        *,
        batch: int = DEFAULT_BATCH,
    ) -> None:
        if not model.strip():
            raise ConfigError("the gateway embedder needs a model (gateway:MODEL[@DIMS])")
        if dimensions is not None and dimensions < 1:
            raise ConfigError(f"embedding dimensions must be at least 1, not {dimensions}")
        if batch < 1:
            raise ConfigError(f"the embedding batch must be at least 1, not {batch}")
        self._gateway = gateway
        self.model = model
        self._who = who  # or how to learn it, once, on the first request (an account lookup)
        self.batch = batch
        self._asked = dimensions  # sent to the provider only when configured
        size = dimensions if dimensions is not None else known_dimensions(model)
        if size is None:
            raise ConfigError(
                f"the dimensions of embeddings model {model!r} are not known: write them in "
                f"PRELOOP_SEARCH_EMBEDDER as gateway:{model}@DIMS"
            )
        self._identity = EmbedderIdentity(PROVIDER, model, size)

    @property
    def identity(self) -> EmbedderIdentity:
        return self._identity

    async def who(self) -> Attribution:
        """Whom the requests are accounted to."""
        if not isinstance(self._who, Attribution):
            self._who = await self._who()
        return self._who

    async def probe(self) -> EmbedderIdentity:
        """Embed one short text: ``EmbeddingError`` unless the model answers a vector of the
        identity's dimensions; the identity."""
        await self.embed(["preloop"])
        return self._identity

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One unit vector per text, in order; a blank text is the zero vector and is not sent
        (providers refuse empty inputs)."""
        zero: Vector = (0.0,) * self._identity.dimensions
        vectors = [zero] * len(texts)
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        for start in range(0, len(wanted), self.batch):
            chunk = wanted[start : start + self.batch]
            answered = await self._embed_batch([texts[i] for i in chunk])
            for i, vector in zip(chunk, answered, strict=True):
                vectors[i] = vector
        return vectors

    async def _embed_batch(self, texts: list[str]) -> list[Vector]:
        body: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self._asked is not None:
            body["dimensions"] = self._asked
        try:
            answer = await self._gateway.embed(await self.who(), body)
        except PreloopError as exc:
            raise EmbeddingError(f"embeddings model {self.model!r} failed: {exc.message}") from exc
        vectors = self._checked(answer, len(texts))
        return [normalised(v) for v in vectors]

    def _checked(self, answer: Any, count: int) -> list[list[float]]:
        """The answer's vectors in input order, or ``EmbeddingError`` saying what is wrong."""
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise self._garbage("the answer has no 'data' list")
        if len(data) != count:
            raise self._garbage(f"{len(data)} embeddings for {count} inputs")
        ordered: list[list[float] | None] = [None] * count
        for item in data:
            index = item.get("index") if isinstance(item, dict) else None
            if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
                raise self._garbage(f"an embedding has no valid 'index' (0 to {count - 1})")
            if ordered[index] is not None:
                raise self._garbage(f"two embeddings for input {index}")
            ordered[index] = self._vector(item.get("embedding"), index)
        return [vector for vector in ordered if vector is not None]

    def _vector(self, values: Any, index: int) -> list[float]:
        if not isinstance(values, list) or not values:
            raise self._garbage(f"embedding {index} is not a list of numbers")
        if not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in values
        ):
            raise self._garbage(f"embedding {index} holds a value that is not a finite number")
        expected = self._identity.dimensions
        if len(values) != expected:
            raise self._garbage(f"embedding {index} has {len(values)} dimensions, not {expected}")
        return [float(v) for v in values]

    def _garbage(self, what: str) -> EmbeddingError:
        return EmbeddingError(f"embeddings model {self.model!r} answered unusably: {what}")
