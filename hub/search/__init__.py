"""Search over issues by meaning: embedders and vector comparison (issue 16).

So far the foundation only: the ``Embedder`` port with the offline ``HashingEmbedder``
(``embedders.py``, decision 0097) and exact cosine top-k in pure Python (``vectors.py``).
Nothing uses the package yet: the index, the search engines and duplicate detection come with
the rest of issue 16.
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
