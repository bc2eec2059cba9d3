"""Search on the server side: embedders that need what the core may not import (a local
sentence-embedding model, ``minilm.py``)."""
