"""Search over issues by meaning: embedders and vector comparison (issue 16).

- ``embedders.py``: the ``Embedder`` port and the offline ``HashingEmbedder`` (decision 0097);
- ``vectors.py``: exact cosine top-k in pure Python;
- ``records.py``, ``ports.py``: stored vectors (``IssueVector``), the ``IssueVectorStore``
  port, the kinds of search and what a search answers; ``memory.py``: the in-memory store.
"""

from hub.search.embedders import Embedder, EmbedderIdentity, HashingEmbedder, Vector
from hub.search.vectors import Scored, as_array, cosine, top_k

__all__ = [
    "Embedder",
    "EmbedderIdentity",
    "HashingEmbedder",
    "Scored",
    "Vector",
    "as_array",
    "cosine",
    "top_k",
]
