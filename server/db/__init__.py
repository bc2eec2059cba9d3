"""The database adapter: SQLAlchemy tables, the SQL stores, Alembic migrations.

storage = await open_storage("sqlite:///data/preloop.db")  # migrates, then opens
...
await storage.close()
"""

from __future__ import annotations

from server.db.engine import make_engine, normalize_database_url
from server.db.migrate import current_revision, head_revision, open_storage, upgrade_database
from server.db.stores import SqlStorage

__all__ = [
    "SqlStorage",
    "current_revision",
    "head_revision",
    "make_engine",
    "normalize_database_url",
    "open_storage",
    "upgrade_database",
]
