"""Mattermost's button tokens: Mattermost does not sign its callbacks, so each button's
``context`` carries an :class:`ActionToken` signed with the server's link secret (under a key
of its own: an email link is no Mattermost token, nor the reverse), naming the request and the
choice and expiring with the request. The token proves the button is ours; the clicker's
Mattermost ``user_id`` says who decides."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Literal

import msgspec

from hub.errors import AuthenticationError
from hub.links import LinkExpiredError, LinkSigner

ACTION_PATH = "/mattermost/actions"  # where the buttons call back
Action = Literal["approve", "deny"]
_KEY_LABEL = b"preloop mattermost action token v1"


class ActionToken(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What one button may do: this choice on this request, until ``expires_at``."""

    account_id: str
    request_id: str
    action: Action
    expires_at: int  # unix seconds


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(ActionToken)


class ActionSigner:
    """Signs and checks button tokens (HMAC-SHA256 under a key derived from the link secret)."""

    def __init__(self, secret: str) -> None:
        self._key = LinkSigner(secret).derived_key(_KEY_LABEL)

    @classmethod
    def under(cls, links: LinkSigner) -> ActionSigner:
        """The signer whose key derives from the secret ``links`` signs with."""
        signer = cls.__new__(cls)
        signer._key = links.derived_key(_KEY_LABEL)
        return signer

    def sign(self, token: ActionToken) -> str:
        payload = _b64(_encoder.encode(token))
        return f"{payload}.{self._signature(payload)}"

    def verify(self, text: str, now: datetime) -> ActionToken:
        """The token inside ``text``; ``AuthenticationError`` when this server did not issue
        it (tampered, cut short, another server's), ``LinkExpiredError`` when too old."""
        payload, dot, signature = text.partition(".")
        if (
            not dot
            or not text.isascii()
            or not hmac.compare_digest(signature, self._signature(payload))
        ):
            raise AuthenticationError("this button is not valid: its token was changed")
        try:
            token = _decoder.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (msgspec.DecodeError, binascii.Error, ValueError) as exc:
            raise AuthenticationError("this button is not valid") from exc
        if now.timestamp() >= token.expires_at:
            raise LinkExpiredError("this button has expired")
        return token

    def _signature(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
