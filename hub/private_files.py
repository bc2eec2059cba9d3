"""Files only their owner may read: the data directory (0700), and what Preloop keeps in it
(the SQLite database, keys and secrets: 0600). Modes are set when Preloop creates a path; a
directory or file that already exists keeps the mode its owner gave it."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (mode 0700) when missing; missing parents get the usual mode."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 when missing (its directory too, 0700): SQLite then
    opens the file as it is, and gives its ``-wal`` and ``-shm`` files the same mode."""
    make_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, created with mode 0600 (its directory 0700)."""
    make_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
