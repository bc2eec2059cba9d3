"""Saved connection profiles: what ``preloop login`` writes and the CLI and the dashboard read.

One JSON file, ``$XDG_CONFIG_HOME/preloop/profiles.json`` (``~/.config`` when unset), mode
0600 since it holds API keys: ``{"<name>": {"url": ..., "api_key": ...}}``. It lives in the
hub so that both edges (``server.cli`` and ``tui``) share one reader without importing each
other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hub.errors import ConfigError
from hub.private_files import write_private


def profile_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "preloop" / "profiles.json"


def read_profiles() -> dict[str, dict[str, str]]:
    """Every saved profile, keeping only string fields (empty when there is no file)."""
    path = profile_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        return {}
    return {
        name: {k: v for k, v in fields.items() if isinstance(k, str) and isinstance(v, str)}
        for name, fields in data.items()
        if isinstance(name, str) and isinstance(fields, dict)
    }


def read_profile(name: str) -> dict[str, str]:
    """The saved profile ``name`` (empty when there is none)."""
    return read_profiles().get(name, {})


def save_profile(name: str, url: str, key: str) -> Path:
    """Add or replace profile ``name``; the file is created with mode 0600."""
    profiles = read_profiles()
    profiles[name] = {"url": url, "api_key": key}
    path = profile_path()
    write_private(path, json.dumps(profiles, indent=2))
    return path
