"""The mobile push channel: approval requests reach paired phones through the push proxy.

    Notice ─▶ PushNotifier.deliver ─▶ for each recipient's paired devices with a push token:
        POST <PRELOOP_PUSH_PROXY_URL>   X-API-Key: <PRELOOP_PUSH_PROXY_API_KEY>
        {"platform", "device_token", "title", "body", "data": {approval_id, server_url, tool}}

Each device is tried on its own, up to ``attempts`` times with exponential backoff when the
proxy answers 5xx or cannot be reached; a 4xx is not retried (the request itself is wrong).
Every device that could not be reached is audited (``push.failed``) without the API key and
with only the start of the device token, and ``deliver`` does not raise for it: one dead
phone must not stop the others, nor make the dispatch send the same push again to the phones
that got it. ``settle`` sends nothing: a phone shows the request until the user opens it, and
the app then lists only what is still pending (docs/decisions/0012-device-credentials-and-push.md).

``announce`` pushes the announcement's title (and its first line as the body) to the
recipients' devices, with ``data.announcement`` (its key) in place of an ``approval_id``.
A retry skips the devices already reached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from hub.auditing import Auditor
from hub.errors import PreloopError
from hub.notifier import Announcement, Notice
from hub.ports import DeviceStore
from hub.records import ApprovalRequest, Device
from hub.settings import Settings

CHANNEL = "push"
_ANNOUNCED_KEPT = 1000  # announcements remembered for retries (then the oldest is forgotten)
MAX_BODY = 180  # characters of the notification's text; phones cut the rest anyway
_RETRIED = (httpx.TransportError,)


class PushFailedError(PreloopError):
    """One push could not be delivered (after its retries, when retried)."""

    title = "Push not delivered"

    def __init__(self, reason: str, *, attempts: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts


def masked(token: str) -> str:
    """Enough of a device token to tell devices apart in the audit, never the whole of it."""
    return f"{token[:6]}…({len(token)} chars)" if len(token) > 6 else "…"


def _truncate(text: str, limit: int = MAX_BODY) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PushNotifier:
    """The ``push`` channel of hub.notifier.Notifier, talking to the push proxy over HTTP."""

    def __init__(
        self,
        *,
        proxy_url: str,
        api_key: str,
        devices: DeviceStore,
        auditor: Auditor,
        server_url: str,
        client: httpx.AsyncClient | None = None,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        timeout_seconds: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self._url = proxy_url
        self._api_key = api_key
        self._devices = devices
        self._auditor = auditor
        self._server_url = server_url
        self._client = client or httpx.AsyncClient(timeout=timeout_seconds)
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        # announcement key -> the devices it reached (a retry skips them), oldest first
        self._announced: dict[str, set[str]] = {}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, devices: DeviceStore, auditor: Auditor
    ) -> PushNotifier | None:
        """The channel as configured, or ``None`` when no push proxy is set."""
        if not settings.push.proxy_url:
            return None
        return cls(
            proxy_url=settings.push.proxy_url,
            api_key=settings.push.proxy_api_key,
            devices=devices,
            auditor=auditor,
            server_url=settings.public_url,
        )

    @property
    def channel(self) -> str:
        return CHANNEL

    async def close(self) -> None:
        await self._client.aclose()

    async def deliver(self, notice: Notice) -> None:
        """Push the request to every paired device of every recipient."""
        request = notice.request
        for recipient in notice.recipients:
            devices = await self._devices.list(request.account_id, user_id=recipient.user_id)
            for device in devices:
                if device.revoked_at is not None or not device.push_token:
                    continue
                try:
                    await self._send(self._message(notice, device))
                except PushFailedError as exc:
                    await self._audit_failure(request, device, exc)

    async def settle(self, request: ApprovalRequest) -> None:
        """Nothing to update on a phone: the app lists only pending requests."""
        return

    async def announce(self, announcement: Announcement) -> None:
        """Push the title to every paired device of every recipient; like ``deliver``, a
        device that cannot be reached is audited and the others still get it."""
        reached = self._announced.setdefault(announcement.key, set())
        while len(self._announced) > _ANNOUNCED_KEPT:
            del self._announced[next(iter(self._announced))]
        for recipient in announcement.recipients:
            devices = await self._devices.list(announcement.account_id, user_id=recipient.user_id)
            for device in devices:
                if device.revoked_at is not None or not device.push_token:
                    continue
                if device.id in reached:
                    continue
                message = {
                    "platform": device.platform,
                    "device_token": device.push_token,
                    "title": _truncate(announcement.title, 100),
                    "body": _truncate(announcement.lines[0] if announcement.lines else ""),
                    "data": {
                        "announcement": announcement.key,
                        "severity": announcement.severity,
                        "server_url": self._server_url,
                    },
                }
                try:
                    await self._send(message)
                except PushFailedError as exc:
                    await self._audit_device_failure(
                        announcement.account_id, announcement.key, device, exc
                    )
                else:
                    reached.add(device.id)

    # --- internals ------------------------------------------------------------------------
    def _message(self, notice: Notice, device: Device) -> dict[str, Any]:
        request = notice.request
        prefix = "Escalated: approval" if notice.escalation else "Approval"
        why = request.justification or request.reason or f"rule {request.rule}"
        return {
            "platform": device.platform,
            "device_token": device.push_token,
            "title": _truncate(f"{prefix} needed: {request.server} / {request.tool}", 100),
            "body": _truncate(why),
            "data": {
                "approval_id": request.id,
                "server_url": self._server_url,
                "tool": request.tool,
                "server": request.server,
            },
        }

    async def _send(self, message: dict[str, Any]) -> None:
        reason = ""
        for attempt in range(1, self._attempts + 1):
            try:
                response = await self._client.post(
                    self._url, json=message, headers={"X-API-Key": self._api_key}
                )
            except _RETRIED as exc:
                reason = f"push proxy unreachable: {type(exc).__name__}"
            else:
                if response.is_success:
                    return
                reason = f"push proxy answered HTTP {response.status_code}"
                if response.status_code < 500:
                    raise PushFailedError(reason, attempts=attempt)
            if attempt < self._attempts:
                await self._sleep(self._backoff * 2 ** (attempt - 1))
        raise PushFailedError(reason, attempts=self._attempts)

    async def _audit_failure(
        self, request: ApprovalRequest, device: Device, exc: PushFailedError
    ) -> None:
        await self._audit_device_failure(request.account_id, request.id, device, exc)

    async def _audit_device_failure(
        self, account_id: str, subject: str, device: Device, exc: PushFailedError
    ) -> None:
        await self._auditor.record(
            account_id,
            "push.failed",
            "system",
            {
                "request_id": subject,
                "user_id": device.user_id,
                "device_id": device.id,
                "platform": device.platform,
                "device_hint": masked(device.push_token or ""),
                "attempts": exc.attempts,
                "reason": exc.reason,
            },
        )


if TYPE_CHECKING:  # mypy proves the channel keeps the port's shape
    from typing import cast

    from hub.notifier import Notifier

    _notifier: Notifier = PushNotifier(
        proxy_url="",
        api_key="",
        devices=cast(DeviceStore, None),
        auditor=cast(Auditor, None),
        server_url="",
    )
