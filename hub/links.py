"""Signed decision links: per recipient, per choice, expiring, single-use (by their id).

A link token is ``<payload>.<signature>``, both base64url without padding: the payload is the
JSON of :class:`DecisionLink`, the signature its HMAC-SHA256 under the server's link secret.
Nothing secret is inside (ids and a choice); the token only proves the server issued it. The
token never decides by itself: the server's page asks for confirmation (mail scanners follow
links), records the link's id as used (``Storage.used_links``) and decides as the recipient
through ``ApprovalService.decide``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime
from typing import Literal

import msgspec

from hub.errors import AuthenticationError, ValidationError

Choice = Literal["approve", "deny"]


class LinkExpiredError(AuthenticationError):
    """The link was genuine but its time is over."""


class DecisionLink(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str  # random, recorded once used
    account_id: str
    request_id: str
    user_id: str  # the recipient: the link decides as this user
    choice: Choice
    expires_at: int  # unix seconds


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(DecisionLink)


def new_link_id() -> str:
    return "lnk_" + secrets.token_urlsafe(18)


def new_link_secret() -> str:
    """A fresh secret for signing links (256 bits)."""
    return secrets.token_urlsafe(32)


class LinkSigner:
    """Signs and checks decision links with one server secret."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 32:
            raise ValidationError("the link secret must be at least 32 characters")
        self._key = secret.encode("utf-8")

    def sign(self, link: DecisionLink) -> str:
        payload = _b64(_encoder.encode(link))
        return f"{payload}.{self._signature(payload)}"

    def verify(self, token: str, now: datetime) -> DecisionLink:
        """The link inside ``token``; ``AuthenticationError`` when it was not issued by this
        server (tampered, truncated, another server's), ``LinkExpiredError`` when too old."""
        payload, dot, signature = token.partition(".")
        if (
            not dot
            or not token.isascii()
            or not hmac.compare_digest(signature, self._signature(payload))
        ):
            raise AuthenticationError("this link is not valid: it was changed or cut short")
        try:
            link = _decoder.decode(_unb64(payload))
        except (msgspec.DecodeError, binascii.Error, ValueError) as exc:
            raise AuthenticationError("this link is not valid") from exc
        if now.timestamp() >= link.expires_at:
            raise LinkExpiredError("this link has expired")
        return link

    def derived_key(self, label: bytes) -> bytes:
        """A key of its own, under the same secret, for another kind of token (a Mattermost
        button's: ``bots/mattermost/tokens.py``), so no token of one kind passes as the
        other."""
        return hmac.new(self._key, label, hashlib.sha256).digest()

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
