"""Where a client connects: the one answer the ``preloop`` CLI and the dashboard share.

Flags win, then ``PRELOOP_URL`` / ``PRELOOP_API_KEY`` (the hub's settings, which also read
``./.env``), then the profile ``preloop login`` saved (``hub.profiles``); the URL finally
defaults to the local server's public URL. No key at all is a :class:`ConfigError` that says
what to do.
"""

from __future__ import annotations

import msgspec

from hub.errors import ConfigError
from hub.profiles import read_profile
from hub.settings import load_settings

NO_KEY = "no API key: pass --key, set PRELOOP_API_KEY, or run 'preloop login URL --key KEY'"


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """A server and the key to use there. ``repr`` hides the key."""

    url: str
    api_key: str

    def __repr__(self) -> str:
        return f"Target(url={self.url!r}, api_key='***')"


def resolve_target(url: str | None, key: str | None, profile: str = "default") -> Target:
    """The server and key: flags, else the environment, else the saved profile."""
    settings = load_settings()
    saved = read_profile(profile)
    final_url = url or settings.url or saved.get("url") or settings.public_url
    final_key = key or settings.api_key or saved.get("api_key", "")
    if not final_key:
        raise ConfigError(NO_KEY)
    return Target(url=final_url.rstrip("/"), api_key=final_key)
