"""Where the dashboard connects: the same answer the ``preloop`` CLI gives.

Flags win, then ``PRELOOP_URL`` / ``PRELOOP_API_KEY`` (the hub's settings, which also read
``./.env``), then the profile ``preloop login`` saved in ``$XDG_CONFIG_HOME/preloop/profiles.json``.
The profile file's format is the CLI's (``{"<name>": {"url": ..., "api_key": ...}}``); it is
read here rather than through ``server.cli`` because the TUI never imports the server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

from hub.errors import ConfigError
from hub.settings import load_settings


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A server and the key to use there. ``repr`` hides the key."""

    url: str
    api_key: str

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, api_key='***')"


def profile_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "preloop" / "profiles.json"


def read_profile(name: str) -> dict[str, str]:
    """The saved profile ``name`` (empty when there is none)."""
    path = profile_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    found = data.get(name) if isinstance(data, dict) else None
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)}


def resolve_target(url: str | None, key: str | None, profile: str = "default") -> Target:
    """The server and key: flags, else the environment, else the saved profile."""
    settings = load_settings()
    saved = read_profile(profile)
    final_url = url or settings.url or saved.get("url") or settings.public_url
    final_key = key or settings.api_key or saved.get("api_key", "")
    if not final_key:
        raise ConfigError(
            "no API key: pass --key, set PRELOOP_API_KEY, or run 'preloop login URL --key KEY'"
        )
    return Target(url=final_url.rstrip("/"), api_key=final_key)
