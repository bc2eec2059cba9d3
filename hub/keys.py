"""API key text: ``pl_<key id>_<secret>``. Only the SHA-256 of the whole text is stored.

The key id travels in the clear inside the key so authentication is one indexed lookup; the
secret part carries 256 bits of randomness, so a plain SHA-256 (no slow KDF) is the right hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import msgspec

from hub.records import Role

PREFIX = "pl"
ACTING_ROLES = (Role.AGENT, Role.ADMIN)
"""The roles whose keys may make something act through Preloop: call tools (over MCP) and
models (the model gateway). Viewer keys read and approver keys read and decide; neither runs
anything (docs/cli.md, docs/decisions/0044)."""


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """Who is making a request, once authenticated."""

    key_id: str
    account_id: str
    role: Role
    name: str = ""
    user_id: str | None = None
    labels: dict[str, str] = {}
    tools: tuple[str, ...] = ()  # the key's tool allow-list (hub/allowlist.py); empty: all
    # The credential the request came with: ``key:<id>`` for an API key (the default), or a
    # channel's (``slack:<id>``, ``mattermost:<id>``, ``email:<link id>``, ``device:<id>``)
    # when a person acts through it; decisions record it beside the person.
    via: str = ""

    @property
    def credential(self) -> str:
        return self.via or f"key:{self.key_id}"

    def has(self, *roles: Role) -> bool:
        return self.role in roles


def new_key_id() -> str:
    return secrets.token_hex(8)


def make_key_text(key_id: str) -> str:
    return f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def hash_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_id_of(text: str) -> str | None:
    """The key id inside a key text, or ``None`` when the text is not shaped like a key."""
    parts = text.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or len(parts[1]) != 16 or not parts[2]:
        return None
    return parts[1]


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time comparison of two strings."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))
