"""``Notifier.announce`` on the Mattermost and push channels (Slack and email: see
test_budget_notices.py): the real mattermostdriver against the local fake Mattermost API, the
push channel against the local fake push proxy. A plain post (no buttons) in the workflow's
channel; a push with the title to each paired device of each recipient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bots.mattermost import ActionSigner, MattermostNotifier
from bots.push import PushNotifier
from hub.auditing import Auditor
from hub.clock import FrozenClock
from hub.errors import ConfigError
from hub.ids import new_id
from hub.memory import InMemoryStorage
from hub.notifier import Announcement, Recipient
from hub.records import Account, Device, User
from hub.settings import MattermostSettings
from tests.integration.conftest import serve_asgi
from tests.integration.fakes.mattermost import FakeMattermost
from tests.integration.test_push import FakePushProxy

TOKEN = "mm-bot-token-that-stays-secret-0123"
PROXY_KEY = "proxy-key-that-must-never-be-audited"


def _announcement(
    account_id: str = "acct_1", *recipients: Recipient, **fields: object
) -> Announcement:
    values: dict[str, object] = {
        "key": "budget:bud_1:20261125T0000Z",
        "account_id": account_id,
        "title": 'Budget "team-day" passed its soft limit',
        "lines": ("Budget: team-day (account budget, period: day)", "Spent: $8.10 of $8.00"),
        "severity": "warning",
        "recipients": recipients,
    }
    return Announcement(**(values | fields))  # type: ignore[arg-type]


def _mattermost(url: str, channel_id: str = "chan-default") -> MattermostNotifier:
    storage = InMemoryStorage()
    return MattermostNotifier(
        MattermostSettings(url=url, token=TOKEN, channel_id=channel_id),
        ActionSigner("x" * 40),
        public_url="https://preloop.example",
        clock=FrozenClock(),
        link_seconds=600,
        users=storage.users,
        messages=storage.channel_messages,
    )


async def test_mattermost_posts_the_announcement_without_buttons(
    mattermost: tuple[FakeMattermost, str],
) -> None:
    fake, url = mattermost
    ada = Recipient(user_id="user_ada", email="ada@example.com")
    notifier = _mattermost(url)

    await notifier.announce(
        _announcement("acct_1", ada, channel_settings={"mattermost": {"channel": "chan-spend"}})
    )
    await notifier.announce(_announcement())  # no channel setting: the default channel

    first, second = fake.created()
    assert ("chan-spend", "chan-default") == (first["channel_id"], second["channel_id"])
    assert '**Budget "team-day" passed its soft limit**' == first["message"]
    [attachment] = first["props"]["attachments"]
    assert [] == attachment["actions"]
    assert "- Spent: $8.10 of $8.00" in attachment["text"]
    assert "For: ada@example.com" in attachment["text"]
    assert TOKEN not in str(fake.created())


async def test_mattermost_without_a_channel_refuses() -> None:
    notifier = _mattermost("http://127.0.0.1:9", channel_id="")

    with pytest.raises(ConfigError, match="no Mattermost channel"):
        await notifier.announce(_announcement())


@pytest.fixture
def proxy() -> Iterator[tuple[FakePushProxy, str]]:
    app = FakePushProxy([503])  # the first push fails once (retried by the channel)
    with serve_asgi(app, "the fake push proxy", lifespan="auto") as url:
        yield app, f"{url}/push"


async def test_push_sends_the_title_to_each_paired_device_once(
    proxy: tuple[FakePushProxy, str],
) -> None:
    app, url = proxy
    storage, clock = InMemoryStorage(), FrozenClock()
    account = Account(id=new_id("acct"), name="default", created_at=clock.now())
    await storage.accounts.add(account)
    ann = User(
        id=new_id("user"), account_id=account.id, email="ann@example.com", created_at=clock.now()
    )
    await storage.users.add(ann)
    for platform, token in (("ios", "apns-token-ann-0123456789"), ("android", None)):
        await storage.devices.add(
            Device(
                id=new_id("dev"),
                account_id=account.id,
                user_id=ann.id,
                name=platform,
                platform=platform,
                secret_hash=new_id("hash"),
                push_token=token,
                created_at=clock.now(),
            )
        )

    async def no_wait(seconds: float) -> None:
        return

    notifier = PushNotifier(
        proxy_url=url,
        api_key=PROXY_KEY,
        devices=storage.devices,
        auditor=Auditor(storage.audit, clock),
        server_url="https://preloop.example",
        sleep=no_wait,
    )
    told = _announcement(account.id, Recipient(user_id=ann.id, email=ann.email))
    try:
        await notifier.announce(told)
        await notifier.announce(told)  # a retry of the same announcement: not pushed again
    finally:
        await notifier.close()

    assert 2 == len(app.requests)  # the 503, then the push itself
    headers, pushed = app.requests[-1]
    assert PROXY_KEY == headers["x-api-key"]
    assert {
        "platform": "ios",
        "device_token": "apns-token-ann-0123456789",
        "title": 'Budget "team-day" passed its soft limit',
        "body": "Budget: team-day (account budget, period: day)",
        "data": {
            "announcement": "budget:bud_1:20261125T0000Z",
            "severity": "warning",
            "server_url": "https://preloop.example",
        },
    } == pushed
