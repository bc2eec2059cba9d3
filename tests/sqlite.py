"""SQLite for tests: one migrated template database file per test process (per xdist worker),
copied wherever a test needs a migrated database, so no server or hub a test starts spends
its start migrating (decision 0082).

A copy of a freshly migrated file is what migrating gives, byte for byte the same schema and
``alembic_version``; the server reads that revision and skips Alembic (server/db/migrate.py).
The tests of migrating itself (``preloop db upgrade``, a first ``preloop serve`` in an empty
data directory) start from nothing on purpose and do not use this.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from hub.private_files import create_private_file
from hub.settings import Settings
from server.db import upgrade_database
from tests.pg import run_in_thread

DATABASE_FILE = "preloop.db"  # the default database in the data directory (hub/settings.py)


@functools.cache
def migrated_template() -> Path:
    """The migrated template of this process, made on first use and removed at exit."""
    root = Path(tempfile.mkdtemp(prefix="preloop-sqlite-template-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    path = root / DATABASE_FILE
    # On a loop in a thread of its own: callers may be inside a running event loop.
    run_in_thread(lambda: upgrade_database(f"sqlite:///{path}"))
    return path


def copy_migrated(path: Path) -> None:
    """A migrated database at ``path`` (created 0600 in a 0700 directory, as the server
    creates its own); a file already there is left as it is (a restart keeps its data)."""
    if path.exists():
        return
    create_private_file(path)
    shutil.copyfile(migrated_template(), path)


def seed_data_directory(settings: Settings) -> None:
    """When ``settings`` use the default SQLite file in the data directory, put a migrated
    copy there before the first start."""
    if not settings.database.url:
        copy_migrated(settings.data_path / DATABASE_FILE)
