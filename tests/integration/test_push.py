"""The push channel against a local fake push proxy on uvicorn (127.0.0.1): what it posts,
retries with backoff on 5xx and connection errors, and failures audited without secrets."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bots.push import PushNotifier
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.ids import new_id
from hub.memory import InMemoryStorage
from hub.notifier import Notice, Recipient
from hub.ports import AuditQuery
from hub.records import Account, ApprovalRequest, Device, User
from hub.settings import load_settings
from tests.integration.conftest import serve_asgi
from tests.integration.fakes import read_body

API_KEY = "proxy-key-that-must-never-be-audited"
SERVER_URL = "https://preloop.example.com"
Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class FakePushProxy:
    """An ASGI app that records every request and answers ``statuses`` in turn (then 200)."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.requests.append((headers, msgspec.json.decode(body)))
        status = self.statuses.pop(0) if self.statuses else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _serve(app: FakePushProxy) -> Iterator[str]:
    with serve_asgi(app, "the fake push proxy", lifespan="auto") as url:
        yield f"{url}/push"


class Setup(msgspec.Struct):
    storage: InMemoryStorage
    auditor: Auditor
    request: ApprovalRequest
    ann: Recipient
    bob: Recipient
    delays: list[float]


@pytest.fixture
async def setup() -> Setup:
    storage = InMemoryStorage()
    clock = FrozenClock()
    now = clock.now()
    account = Account(id=new_id("acct"), name="default", created_at=now)
    await storage.accounts.add(account)
    people = []
    for email in ("ann@example.com", "bob@example.com"):
        person = User(id=new_id("user"), account_id=account.id, email=email, created_at=now)
        await storage.users.add(person)
        people.append(Recipient(user_id=person.id, email=email))
    ann, bob = people
    for owner, platform, token in (
        (ann, "ios", "apns-token-ann-0123456789"),
        (ann, "android", None),  # paired, but no push token registered yet
        (bob, "android", "fcm-token-bob-9876543210"),
    ):
        await storage.devices.add(
            Device(
                id=new_id("dev"),
                account_id=account.id,
                user_id=owner.user_id,
                name=f"{owner.email} {platform}",
                platform=platform,
                secret_hash=new_id("hash"),
                push_token=token,
                created_at=now,
            )
        )
    request = ApprovalRequest(
        id=new_id("apr"),
        account_id=account.id,
        principal_key_id="key_agent",
        server="github",
        tool="delete_repo",
        args_digest="sha256:x",
        justification="clean up the fork",
        policy_version=1,
        workflow="default",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Setup(
        storage=storage,
        auditor=Auditor(storage.audit, clock),
        request=request,
        ann=ann,
        bob=bob,
        delays=[],
    )


def _notifier(setup: Setup, url: str, **options: Any) -> PushNotifier:
    async def no_wait(seconds: float) -> None:
        setup.delays.append(seconds)

    return PushNotifier(
        proxy_url=url,
        api_key=API_KEY,
        devices=setup.storage.devices,
        auditor=setup.auditor,
        server_url=SERVER_URL,
        sleep=no_wait,
        **options,
    )


async def _failures(setup: Setup) -> list[dict[str, Any]]:
    events = await setup.auditor.query(
        setup.request.account_id, AuditQuery(kind="push.failed", newest_first=False)
    )
    return [e.data for e in events]


@pytest.fixture
def proxy(request: pytest.FixtureRequest) -> Iterator[tuple[FakePushProxy, str]]:
    app = FakePushProxy(getattr(request, "param", []))
    for url in _serve(app):
        yield app, url


async def test_deliver_posts_one_push_per_device_with_a_token(
    setup: Setup, proxy: tuple[FakePushProxy, str]
) -> None:
    app, url = proxy
    notifier = _notifier(setup, url)
    try:
        await notifier.deliver(Notice(request=setup.request, recipients=(setup.ann, setup.bob)))
    finally:
        await notifier.close()

    assert "push" == notifier.channel
    assert [API_KEY, API_KEY] == [headers["x-api-key"] for headers, _ in app.requests]
    data = {"approval_id": setup.request.id, "server_url": SERVER_URL, "tool": "delete_repo"}
    assert [
        {
            "platform": "ios",
            "device_token": "apns-token-ann-0123456789",
            "title": "Approval needed: github / delete_repo",
            "body": "clean up the fork",
            "data": {**data, "server": "github"},
        },
        {
            "platform": "android",
            "device_token": "fcm-token-bob-9876543210",
            "title": "Approval needed: github / delete_repo",
            "body": "clean up the fork",
            "data": {**data, "server": "github"},
        },
    ] == [body for _, body in app.requests]
    assert [] == await _failures(setup)


async def test_revoked_devices_get_nothing(setup: Setup, proxy: tuple[FakePushProxy, str]) -> None:
    app, url = proxy
    for device in await setup.storage.devices.list(setup.request.account_id):
        await setup.storage.devices.revoke(device.account_id, device.id, device.created_at)
    notifier = _notifier(setup, url)
    try:
        await notifier.deliver(Notice(request=setup.request, recipients=(setup.ann, setup.bob)))
    finally:
        await notifier.close()

    assert [] == app.requests


@pytest.mark.parametrize("proxy", [[503, 502]], indirect=True)
async def test_a_proxy_failing_twice_then_answering_delivers_with_backoff(
    setup: Setup, proxy: tuple[FakePushProxy, str]
) -> None:
    app, url = proxy
    notifier = _notifier(setup, url, backoff_seconds=0.5)
    try:
        await notifier.deliver(Notice(request=setup.request, recipients=(setup.ann,)))
    finally:
        await notifier.close()

    assert 3 == len(app.requests)
    assert [0.5, 1.0] == setup.delays
    assert [] == await _failures(setup)


@pytest.mark.parametrize("proxy", [[500] * 20], indirect=True)
async def test_a_proxy_that_always_fails_is_audited_and_raises_nothing(
    setup: Setup, proxy: tuple[FakePushProxy, str]
) -> None:
    app, url = proxy
    notifier = _notifier(setup, url, attempts=3)
    try:
        await notifier.deliver(Notice(request=setup.request, recipients=(setup.ann, setup.bob)))
    finally:
        await notifier.close()

    assert 6 == len(app.requests)  # two devices, three attempts each: bounded
    failures = await _failures(setup)
    assert [
        ("ios", 3, "push proxy answered HTTP 500"),
        ("android", 3, "push proxy answered HTTP 500"),
    ] == [(f["platform"], f["attempts"], f["reason"]) for f in failures]
    audited = msgspec.json.encode(failures).decode()
    assert API_KEY not in audited
    assert "apns-token-ann-0123456789" not in audited
    assert "fcm-token-bob-9876543210" not in audited
    assert failures[0]["device_hint"].startswith("apns-t…")


@pytest.mark.parametrize("proxy", [[400]], indirect=True)
async def test_a_refused_push_is_not_retried(
    setup: Setup, proxy: tuple[FakePushProxy, str]
) -> None:
    app, url = proxy
    notifier = _notifier(setup, url)
    try:
        await notifier.deliver(Notice(request=setup.request, recipients=(setup.ann,)))
    finally:
        await notifier.close()

    assert 1 == len(app.requests)
    assert [] == setup.delays
    assert [(1, "push proxy answered HTTP 400")] == [
        (f["attempts"], f["reason"]) for f in await _failures(setup)
    ]


async def test_an_unreachable_proxy_is_retried_then_audited(setup: Setup) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    notifier = _notifier(setup, f"http://127.0.0.1:{port}/push", attempts=3)
    try:
        await notifier.deliver(Notice(request=setup.request, recipients=(setup.bob,)))
    finally:
        await notifier.close()

    assert 2 == len(setup.delays)
    assert [(3, "push proxy unreachable: ConnectError")] == [
        (f["attempts"], f["reason"]) for f in await _failures(setup)
    ]


async def test_settle_sends_nothing(setup: Setup, proxy: tuple[FakePushProxy, str]) -> None:
    app, url = proxy
    notifier = _notifier(setup, url)
    try:
        await notifier.settle(setup.request)
    finally:
        await notifier.close()

    assert [] == app.requests


async def test_the_channel_is_built_only_when_a_proxy_is_configured(
    setup: Setup, tmp_path: Path
) -> None:
    none = PushNotifier.from_settings(
        load_settings({}, env_file=tmp_path / "none"),
        devices=setup.storage.devices,
        auditor=setup.auditor,
    )
    some = PushNotifier.from_settings(
        load_settings(
            {"PUSH_PROXY_URL": "http://127.0.0.1:9/push", "PUSH_PROXY_API_KEY": "k"},
            env_file=tmp_path / "none",
        ),
        devices=setup.storage.devices,
        auditor=setup.auditor,
    )

    assert none is None
    assert some is not None
    assert "push" == some.channel
    await some.close()
