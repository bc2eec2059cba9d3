"""The real arguments of calls held for asynchronous approval, sealed in the database.

An approval request keeps the redacted arguments (for people) and their digest. The call
itself needs the real ones, which may hold secrets: they are sealed (authenticated
encryption, server/custody/local.py's keys) and stored beside the request, so
``get_approval_status`` on any replica, also after a restart, can run the approved call. The
request's claim (compare-and-set) makes sure it runs once (docs/decisions/0048).
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from hub.clock import Clock
from hub.errors import StorageError
from hub.ports import HeldCallStore
from hub.records import HeldCall

_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(dict[str, Any])


class Sealer(Protocol):
    """Authenticated encryption bound to a context (the same context opens, no other)."""

    def seal(self, context: str, plaintext: str) -> tuple[str, str]:
        """``(key_id, sealed)``."""
        ...

    def open(self, context: str, key_id: str, sealed: str) -> str:
        """The plaintext; ``ConfigError`` when the key is unknown or the seal was altered."""
        ...


def _context(account_id: str, request_id: str) -> str:
    return f"held-call\x00{account_id}\x00{request_id}"


class HeldCalls:
    def __init__(self, store: HeldCallStore, sealer: Sealer, clock: Clock) -> None:
        self._store = store
        self._sealer = sealer
        self._clock = clock

    async def keep(self, account_id: str, request_id: str, arguments: dict[str, Any]) -> None:
        key_id, sealed = self._sealer.seal(
            _context(account_id, request_id), _encoder.encode(arguments).decode()
        )
        await self._store.add(
            HeldCall(
                account_id=account_id,
                request_id=request_id,
                key_id=key_id,
                sealed=sealed,
                created_at=self._clock.now(),
            )
        )

    async def arguments(self, account_id: str, request_id: str) -> dict[str, Any] | None:
        """The call's real arguments, or ``None`` when none are kept."""
        held = await self._store.get(account_id, request_id)
        if held is None:
            return None
        plain = self._sealer.open(_context(account_id, request_id), held.key_id, held.sealed)
        try:
            return _decoder.decode(plain)
        except msgspec.DecodeError as exc:
            raise StorageError(f"the held call of approval {request_id} is unreadable") from exc

    async def forget(self, account_id: str, request_id: str) -> None:
        await self._store.remove(account_id, request_id)
