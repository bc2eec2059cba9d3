"""Where the dashboard connects: the same answer the ``preloop`` CLI gives.

Flags win, then ``PRELOOP_URL`` / ``PRELOOP_API_KEY`` (the hub's settings, which also read
``./.env``), then the profile ``preloop login`` saved in ``$XDG_CONFIG_HOME/preloop/profiles.json``.
The profile file is read by ``hub.profiles``, shared with the CLI (the TUI never imports the
server).
"""

from __future__ import annotations

import msgspec

from hub.errors import ConfigError
from hub.profiles import read_profile
from hub.settings import load_settings


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
        raise ConfigError(
            "no API key: pass --key, set PRELOOP_API_KEY, or run 'preloop login URL --key KEY'"
        )
    return Target(url=final_url.rstrip("/"), api_key=final_key)
