"""Paired devices over HTTP: pairing tokens and their QR codes (admin), the app's exchange of
a token for a credential (public: the token is the proof), what a device may do with its
credential (``/devices/me/...``), and listing and revoking devices (admin). See docs/devices.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from hub.devices import (
    DEFAULT_PAIRING_SECONDS,
    MAX_PAIRING_SECONDS,
    MAX_PUSH_TOKEN_LENGTH,
    DeviceCaller,
    Pairing,
)
from hub.errors import AuthenticationError, ConflictError, NotFoundError
from hub.records import ApprovalRequest, Device
from hub.wire import (
    ApprovalRequestView,
    DeviceView,
    DeviceWhoami,
    Paired,
    PairingCreated,
    view_of,
)
from server.api.approvals import DecisionBody
from server.api.deps import caller_of, hub_of
from server.auth import ADMIN, device_only, public, roles
from server.qr import qr_png, qr_svg

PAIR_PATH = "/api/v1/devices/pair"  # excluded from bearer authentication (server/app.py)


class PairingCreate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user: Annotated[str, msgspec.Meta(min_length=1, max_length=320)]  # email or user id
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=MAX_PAIRING_SECONDS)] = (
        DEFAULT_PAIRING_SECONDS
    )


class PairBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    platform: Literal["ios", "android"]
    push_token: Annotated[str, msgspec.Meta(max_length=MAX_PUSH_TOKEN_LENGTH)] | None = None


class PushTokenBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    push_token: Annotated[str, msgspec.Meta(max_length=MAX_PUSH_TOKEN_LENGTH)] | None


def view(device: Device) -> DeviceView:
    return DeviceView(
        id=device.id,
        user_id=device.user_id,
        name=device.name,
        platform=device.platform,
        has_push_token=bool(device.push_token),
        created_at=device.created_at,
        revoked_at=device.revoked_at,
        status="revoked" if device.revoked_at else "active",
    )


def _request(found: ApprovalRequest) -> ApprovalRequestView:
    return view_of(found, ApprovalRequestView)


def device_of(request: Request[Any, Any, Any]) -> DeviceCaller:
    device: DeviceCaller = request.user
    return device


async def _pairing(request: Request[Any, Any, Any], data: PairingCreate) -> Pairing:
    caller = caller_of(request)
    return await hub_of(request).devices.start_pairing(
        caller.account_id,
        user=data.user,
        actor=caller.key_id,
        expires_in_seconds=data.expires_in_seconds,
    )


def _headers(pairing: Pairing) -> dict[str, str]:
    return {
        "X-Preloop-Pairing-Id": pairing.pairing.id,
        "X-Preloop-Pairing-Expires-At": pairing.pairing.expires_at.isoformat(),
        "Cache-Control": "no-store",
    }


class PairingController(Controller):
    path = "/pairing-tokens"
    tags = ["devices"]

    @post("/", opt=roles(ADMIN, raises=(NotFoundError,)))
    async def create(
        self, request: Request[Any, Any, Any], data: JSONBody[PairingCreate]
    ) -> PairingCreated:
        """A one-time pairing token for a user, its ``preloop://pair`` URI and QR code (SVG)."""
        pairing = await _pairing(request, data)
        return PairingCreated(
            id=pairing.pairing.id,
            user_id=pairing.pairing.user_id,
            expires_at=pairing.pairing.expires_at,
            token=pairing.token,
            uri=pairing.uri,
            svg=qr_svg(pairing.uri),
        )

    @post("/png", opt=roles(ADMIN, raises=(NotFoundError,)), status_code=201)
    async def create_png(
        self, request: Request[Any, Any, Any], data: JSONBody[PairingCreate]
    ) -> Response[bytes]:
        """A one-time pairing token as a PNG QR code (id and expiry in the headers)."""
        pairing = await _pairing(request, data)
        return Response(
            qr_png(pairing.uri), media_type="image/png", status_code=201, headers=_headers(pairing)
        )

    @post("/svg", opt=roles(ADMIN, raises=(NotFoundError,)), status_code=201)
    async def create_svg(
        self, request: Request[Any, Any, Any], data: JSONBody[PairingCreate]
    ) -> Response[str]:
        """A one-time pairing token as an SVG QR code (id and expiry in the headers)."""
        pairing = await _pairing(request, data)
        return Response(
            qr_svg(pairing.uri),
            media_type="image/svg+xml",
            status_code=201,
            headers=_headers(pairing),
        )


class DeviceController(Controller):
    path = "/devices"
    tags = ["devices"]

    # --- the app --------------------------------------------------------------------------
    @post("/pair", opt=public(raises=(AuthenticationError,)))
    async def pair(self, request: Request[Any, Any, Any], data: JSONBody[PairBody]) -> Paired:
        """Exchange a pairing token (once, before it expires) for a device credential."""
        paired = await hub_of(request).devices.pair(
            data.token, name=data.name, platform=data.platform, push_token=data.push_token
        )
        return Paired(device=view(paired.device), credential=paired.credential)

    @get("/me", opt=device_only())
    async def me(self, request: Request[Any, Any, Any]) -> DeviceWhoami:
        """The device this credential belongs to, and its user."""
        return view_of(device_of(request), DeviceWhoami)

    @put("/me/push-token", opt=device_only())
    async def set_push_token(
        self, request: Request[Any, Any, Any], data: JSONBody[PushTokenBody]
    ) -> DeviceView:
        """Register, replace (``push_token``) or clear (``null``) the device's push token."""
        device = await hub_of(request).devices.set_push_token(device_of(request), data.push_token)
        return view(device)

    @get("/me/approvals", opt=device_only())
    async def pending(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[ApprovalRequestView]:
        """The pending requests the device's user may decide, newest first."""
        found = await hub_of(request).devices.pending(device_of(request), limit=limit)
        return [_request(r) for r in found]

    @get("/me/approvals/{request_id:str}", opt=device_only())
    async def show(
        self, request: Request[Any, Any, Any], request_id: FromPath[str]
    ) -> ApprovalRequestView:
        """One request the device's user may decide."""
        return _request(await hub_of(request).devices.get(device_of(request), request_id))

    @post(
        "/me/approvals/{request_id:str}/approve",
        opt=device_only(raises=(ConflictError,)),
        status_code=200,
    )
    async def approve(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        data: JSONBody[DecisionBody],
    ) -> ApprovalRequestView:
        """Vote to approve, as the device's user."""
        return _request(
            await hub_of(request).devices.decide(
                device_of(request), request_id, approve=True, comment=data.comment
            )
        )

    @post(
        "/me/approvals/{request_id:str}/deny",
        opt=device_only(raises=(ConflictError,)),
        status_code=200,
    )
    async def deny(
        self,
        request: Request[Any, Any, Any],
        request_id: FromPath[str],
        data: JSONBody[DecisionBody],
    ) -> ApprovalRequestView:
        """Deny, as the device's user."""
        return _request(
            await hub_of(request).devices.decide(
                device_of(request), request_id, approve=False, comment=data.comment
            )
        )

    # --- administration -------------------------------------------------------------------
    @get("/", opt=roles(ADMIN, raises=(NotFoundError,)))
    async def list_devices(
        self,
        request: Request[Any, Any, Any],
        user: Annotated[str | None, QueryParameter()] = None,
    ) -> list[DeviceView]:
        """Paired devices, oldest first; ``user`` (email or id) for one user's."""
        found = await hub_of(request).devices.list_devices(caller_of(request).account_id, user=user)
        return [view(d) for d in found]

    @post("/{device_id:str}/revoke", opt=roles(ADMIN), status_code=200)
    async def revoke(self, request: Request[Any, Any, Any], device_id: FromPath[str]) -> DeviceView:
        """Revoke a device: its credential stops working at once."""
        caller = caller_of(request)
        device = await hub_of(request).devices.revoke(
            caller.account_id, device_id, actor=caller.key_id
        )
        return view(device)
