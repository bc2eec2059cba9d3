"""Devices paired by QR code: pairing tokens, device credentials, and what a device may do.

    admin ── start_pairing(user) ──▶ PairingToken (one-time, expires in minutes)
        QR code: preloop://pair?url=<server URL>&token=plp_<pairing id>_<secret>
    app ──── pair(token, name, platform) ──▶ Device + credential pld_<device id>_<secret>
    app ──── with the credential: list the user's pending approvals, decide them as the user
             (ApprovalService.decide: quorum and no self-approval apply), set its push token

Only SHA-256 hashes of pairing tokens and credentials are stored (both carry 256 random bits,
as API keys do, so no slow KDF is needed). A device is read from the store on every request,
so revoking it stops its credential at once, on every replica.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal
from urllib.parse import urlencode

import msgspec

from hub.approvals import ApprovalService
from hub.auditing import Auditor
from hub.clock import Clock
from hub.errors import AuthenticationError, NotFoundError, ValidationError
from hub.keys import Caller, hash_key, new_key_id, same_secret
from hub.ports import Storage
from hub.records import ApprovalRequest, ApprovalStatus, Device, PairingToken, Role, User

PAIRING_PREFIX = "plp"
DEVICE_PREFIX = "pld"
PAIR_URI = "preloop://pair"
DEFAULT_PAIRING_SECONDS = 600
MAX_PAIRING_SECONDS = 3600
MAX_PUSH_TOKEN_LENGTH = 4096
DEVICE_CHANNEL = "device"

Platform = Literal["ios", "android"]


class Pairing(msgspec.Struct, frozen=True, kw_only=True):
    """A new pairing token: ``token`` is the only time its text exists; ``uri`` is what the
    QR code encodes."""

    pairing: PairingToken
    token: str
    uri: str


class PairedDevice(msgspec.Struct, frozen=True, kw_only=True):
    """A new device: ``credential`` is shown once, to the app that paired."""

    device: Device
    credential: str


class DeviceCaller(msgspec.Struct, frozen=True, kw_only=True):
    """A request made with a device credential, once authenticated. Not an API-key caller:
    the API's role guard refuses it everywhere except the device routes."""

    device_id: str
    account_id: str
    user_id: str
    name: str


def _text(prefix: str, record_id: str) -> str:
    return f"{prefix}_{record_id}_{secrets.token_urlsafe(32)}"


def _id_of(text: str, prefix: str) -> str | None:
    parts = text.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != prefix or len(parts[1]) != 16 or not parts[2]:
        return None
    return parts[1]


def pair_uri(server_url: str, token: str) -> str:
    """The QR code's payload: ``preloop://pair?url=<server URL>&token=<pairing token>``."""
    return f"{PAIR_URI}?{urlencode({'url': server_url, 'token': token})}"


def approver_of(device: DeviceCaller) -> Caller:
    """The approver a device decides as: its user, with the approver role. The vote is the
    user's (``key_id`` is the user id), so two devices of one user count once; the device is
    the credential it came through."""
    return Caller(
        key_id=device.user_id,
        account_id=device.account_id,
        role=Role.APPROVER,
        name=f"device {device.name}",
        user_id=device.user_id,
        via=f"device:{device.device_id}",
    )


class DeviceService:
    def __init__(
        self,
        storage: Storage,
        clock: Clock,
        auditor: Auditor,
        approvals: ApprovalService,
        *,
        server_url: str,
    ) -> None:
        self._storage = storage
        self._clock = clock
        self._auditor = auditor
        self._approvals = approvals
        self._server_url = server_url

    # --- pairing --------------------------------------------------------------------------
    async def start_pairing(
        self,
        account_id: str,
        *,
        user: str,
        actor: str,
        expires_in_seconds: int = DEFAULT_PAIRING_SECONDS,
    ) -> Pairing:
        """A one-time pairing token for ``user`` (an email or a user id)."""
        if not 1 <= expires_in_seconds <= MAX_PAIRING_SECONDS:
            raise ValidationError(
                f"a pairing token lives 1 to {MAX_PAIRING_SECONDS} seconds, "
                f"not {expires_in_seconds}"
            )
        found = await self._user(account_id, user)
        now = self._clock.now()
        pairing_id = new_key_id()
        token = _text(PAIRING_PREFIX, pairing_id)
        pairing = PairingToken(
            id=pairing_id,
            account_id=account_id,
            user_id=found.id,
            token_hash=hash_key(token),
            created_at=now,
            expires_at=now + timedelta(seconds=expires_in_seconds),
        )
        await self._storage.pairings.add(pairing)
        await self._auditor.record(
            account_id,
            "device.pairing_started",
            actor,
            {"pairing_id": pairing_id, "user_id": found.id, "expires_at": pairing.expires_at},
        )
        return Pairing(pairing=pairing, token=token, uri=pair_uri(self._server_url, token))

    async def pair(
        self, token: str, *, name: str, platform: Platform, push_token: str | None = None
    ) -> PairedDevice:
        """Exchange a pairing token (once, before it expires) for a device credential."""
        pairing_id = _id_of(token, PAIRING_PREFIX)
        pairing = await self._storage.pairings.get(pairing_id) if pairing_id else None
        if pairing is None or not same_secret(hash_key(token.strip()), pairing.token_hash):
            raise AuthenticationError("invalid pairing token")
        now = self._clock.now()
        if pairing.used_at is not None:
            raise AuthenticationError(
                f"pairing token {pairing.id} was already used; create a new one with "
                "'preloop devices pair'"
            )
        if now >= pairing.expires_at:
            raise AuthenticationError(
                f"pairing token {pairing.id} expired at {pairing.expires_at.isoformat()}; "
                "create a new one with 'preloop devices pair'"
            )
        _check_push_token(push_token)
        device_id = new_key_id()
        if await self._storage.pairings.use(pairing.id, at=now, device_id=device_id) is None:
            raise AuthenticationError(f"pairing token {pairing.id} was already used or expired")
        credential = _text(DEVICE_PREFIX, device_id)
        device = Device(
            id=device_id,
            account_id=pairing.account_id,
            user_id=pairing.user_id,
            name=name,
            platform=platform,
            secret_hash=hash_key(credential),
            push_token=push_token or None,
            created_at=now,
        )
        await self._storage.devices.add(device)
        await self._auditor.record(
            device.account_id,
            "device.paired",
            device.user_id,
            {"device_id": device_id, "pairing_id": pairing.id, "name": name, "platform": platform},
        )
        return PairedDevice(device=device, credential=credential)

    # --- authentication -------------------------------------------------------------------
    @staticmethod
    def is_credential(text: str) -> bool:
        """Whether ``text`` is shaped like a device credential (not an API key)."""
        return text.strip().startswith(f"{DEVICE_PREFIX}_")

    async def authenticate(self, credential: str) -> DeviceCaller:
        device_id = _id_of(credential, DEVICE_PREFIX)
        device = await self._storage.devices.get(device_id) if device_id else None
        if device is None or not same_secret(hash_key(credential.strip()), device.secret_hash):
            raise AuthenticationError("invalid device credential")
        if device.revoked_at is not None:
            raise AuthenticationError(f"device {device.id} was revoked")
        return DeviceCaller(
            device_id=device.id,
            account_id=device.account_id,
            user_id=device.user_id,
            name=device.name,
        )

    # --- administration -------------------------------------------------------------------
    async def list_devices(self, account_id: str, *, user: str | None = None) -> Sequence[Device]:
        user_id = (await self._user(account_id, user)).id if user else None
        return await self._storage.devices.list(account_id, user_id=user_id)

    async def revoke(self, account_id: str, device_id: str, *, actor: str) -> Device:
        device = await self._storage.devices.revoke(account_id, device_id, self._clock.now())
        await self._auditor.record(
            account_id, "device.revoked", actor, {"device_id": device_id, "user_id": device.user_id}
        )
        return device

    # --- what a device may do -------------------------------------------------------------
    async def set_push_token(self, device: DeviceCaller, push_token: str | None) -> Device:
        _check_push_token(push_token)
        updated = await self._storage.devices.set_push_token(
            device.account_id, device.device_id, push_token or None
        )
        await self._auditor.record(
            device.account_id,
            "device.push_token_set",
            device.user_id,
            {"device_id": device.device_id, "registered": bool(push_token)},
        )
        return updated

    async def pending(self, device: DeviceCaller, *, limit: int = 100) -> list[ApprovalRequest]:
        """The pending requests the device's user may decide, newest first."""
        approver = approver_of(device)
        pending = await self._approvals.list(
            device.account_id, status=ApprovalStatus.PENDING, limit=1000
        )
        mine = [r for r in pending if await self._approvals.may_decide(r, approver)]
        return mine[:limit]

    async def get(self, device: DeviceCaller, request_id: str) -> ApprovalRequest:
        """One request the device's user may decide (else NotFound: a device sees no other)."""
        request = await self._approvals.get(device.account_id, request_id)
        if not await self._approvals.may_decide(request, approver_of(device)):
            raise NotFoundError(f"no approval request {request_id!r} for this device's user")
        return request

    async def decide(
        self, device: DeviceCaller, request_id: str, *, approve: bool, comment: str = ""
    ) -> ApprovalRequest:
        """Vote as the device's user; the approval service applies every rule."""
        voted = await self._approvals.decide(
            device.account_id,
            request_id,
            approver=approver_of(device),
            approve=approve,
            comment=comment,
            channel=DEVICE_CHANNEL,
        )
        return voted.request

    # --- internals ------------------------------------------------------------------------
    async def _user(self, account_id: str, user: str) -> User:
        found = await self._storage.users.get(account_id, user)
        if found is None:
            found = await self._storage.users.get_by_email(account_id, user.lower())
        if found is None:
            raise NotFoundError(f"no user {user!r} (give an email or a user id)")
        return found


def _check_push_token(push_token: str | None) -> None:
    if push_token is not None and len(push_token) > MAX_PUSH_TOKEN_LENGTH:
        raise ValidationError(f"a push token has at most {MAX_PUSH_TOKEN_LENGTH} characters")
