"""Duplicate thresholds per embedder: the cosine at or above which two issues are candidates.

A threshold belongs to one embedder (decision 0097): the hashing embedder scores a paraphrase
about 0.5 where a sentence-embedding model scores 0.8-0.9. ``threshold_for`` answers, in order:
the operator's ``PRELOOP_SEARCH_DUPLICATE_THRESHOLD`` when it is not 0; the measured or
documented value of a known model (``provider:model``, any dimensions); else ``UNKNOWN``, a
conservative value that finds near-copies with any normalised embedding model and little else
(decision 0105, docs/search.md: how to measure your own).
"""

from __future__ import annotations

from hub.search.embedders import EmbedderIdentity, HashingEmbedder

# provider:model (lower case) -> cosine threshold
KNOWN: dict[str, float] = {
    # measured on tests/unit/search/duplicates.py: precision 1.00, recall 0.89 (decision 0097)
    f"local:{HashingEmbedder.MODEL}": HashingEmbedder.DUPLICATE_THRESHOLD,
    # all-MiniLM-L6-v2 (the local-embeddings extra): paraphrases 0.81-0.92, related 0.44, on
    # the research probe set (shared/research/automation.md (d)); not measured in CI
    "local:minilm": 0.75,
    "local:all-minilm-l6-v2": 0.75,
    # OpenAI's embeddings through the gateway: peers use 0.80-0.85; not measured here
    "gateway:text-embedding-3-small": 0.80,
    "gateway:text-embedding-3-large": 0.80,
    "gateway:text-embedding-ada-002": 0.85,
}
UNKNOWN = 0.85  # any other model: near-copies only, until measured and configured


def threshold_for(identity: EmbedderIdentity, configured: float = 0.0) -> float:
    """The threshold to use with ``identity``'s vectors (``configured`` 0: not set)."""
    if configured > 0:
        return configured
    return KNOWN.get(f"{identity.provider}:{identity.model}".lower(), UNKNOWN)
