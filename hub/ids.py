"""Identifiers: random, URL-safe, sortable enough to read in logs."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """A new identifier such as ``key_3f9a1c2b7d4e5f60``."""
    return f"{prefix}_{secrets.token_hex(8)}"
