"""Paired devices and pairing tokens as the REST API answers them."""

from __future__ import annotations

from datetime import datetime

import msgspec


class DeviceView(msgspec.Struct, frozen=True, kw_only=True):
    """A device as shown: never its credential's hash, never its push token."""

    id: str
    user_id: str
    name: str
    platform: str  # ios | android
    has_push_token: bool
    created_at: datetime
    revoked_at: datetime | None
    status: str  # active | revoked


class PairingCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A new pairing token: ``token`` and ``uri`` are shown once; ``uri`` is the QR payload."""

    id: str
    user_id: str
    expires_at: datetime
    token: str
    uri: str
    svg: str  # the QR code as an SVG document


class Paired(msgspec.Struct, frozen=True, kw_only=True):
    device: DeviceView
    credential: str  # shown once: the app keeps it in the platform's secure storage


class DeviceWhoami(msgspec.Struct, frozen=True, kw_only=True):
    """The device a device credential belongs to, and its user (``GET /devices/me``)."""

    device_id: str
    account_id: str
    user_id: str
    name: str
