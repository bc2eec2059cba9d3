"""The ``preloop bots`` worker: delivers approval notices and runs Slack Socket Mode.

    PostgreSQL ──LISTEN "approvals"──▶ NotificationDispatch ──▶ Slack, Mattermost, email, push
                                       (deliver on request and escalation, settle on decision)
    PostgreSQL ──LISTEN "system"────▶ (BudgetCrossed) ──▶ Notifier.announce (budget notices)
    Slack ◀──WebSocket (app token)──▶ bots/slack handlers ──▶ ChannelDecisions.decide

It opens the hub on the configured database with the same settings as ``preloop serve`` but
serves no HTTP, applies no policy and makes no keys: it only reacts to the events the servers
publish. With ``PRELOOP_NOTIFICATIONS_DELIVER=worker`` on the servers it is the one process
that delivers; the servers still accept the channels' callbacks.

It is meant for PostgreSQL, whose LISTEN/NOTIFY carries every replica's events to it. On
SQLite events stay inside the process that made them: the worker then only settles what its
own Socket Mode handlers decide, and the servers must keep delivering (a held call learns of
a decision made here at its next heartbeat).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

from hub.errors import ConfigError
from hub.settings import Settings
from server.bootstrap import check_slack_settings, open_hub
from server.hub_services import Hub

log = logging.getLogger("preloop.bots")

READY = "preloop bots is running"  # logged once everything is up (tests wait for it)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def check_worker_settings(settings: Settings) -> None:
    """Refuse a worker that could not do anything, or not safely."""
    check_slack_settings(settings)
    if not (
        settings.slack.bot_token
        or settings.smtp.host
        or (settings.mattermost.url and settings.mattermost.token)
        or settings.push.proxy_url
    ):
        raise ConfigError(
            "preloop bots has nothing to run: no channel is configured (PRELOOP_SLACK_*, "
            "PRELOOP_MATTERMOST_*, PRELOOP_SMTP_HOST or PRELOOP_PUSH_PROXY_URL)"
        )


def describe(hub: Hub) -> list[str]:
    """What the worker runs, one line each, for the log."""
    settings = hub.settings
    channels = ", ".join(hub.notifications.channels) or "none"
    postgres = settings.database_url.startswith("postgres")
    lines = [
        f"delivering notices on: {channels}",
        "Slack Socket Mode: " + ("on" if settings.slack.app_token else "off"),
    ]
    if not postgres:
        lines.append(
            "database is SQLite: this worker sees only its own events (the servers' stay in "
            "their process); keep PRELOOP_NOTIFICATIONS_DELIVER=server. The worker is meant "
            "for PostgreSQL"
        )
    elif settings.notifications.deliver == "server":
        lines.append(
            "PRELOOP_NOTIFICATIONS_DELIVER=server here: servers configured the same way "
            "deliver too; set it to worker on the servers to leave delivery to this worker"
        )
    return lines


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Run until ``stop`` is set, or SIGTERM / SIGINT arrives."""
    check_worker_settings(settings)
    stop = stop or asyncio.Event()
    with _stopping_on_signals(stop.set):
        hub = await open_hub(settings)
        try:
            for line in describe(hub):
                log.info(line)
            async with contextlib.AsyncExitStack() as running:
                await running.enter_async_context(hub.notifications.running())
                if settings.slack.app_token:
                    from bots.slack.socket_mode import slack_socket_mode  # slack-bolt: when on

                    await running.enter_async_context(
                        slack_socket_mode(hub.channel_decisions, settings.slack)
                    )
                log.info(READY)
                await stop.wait()
                log.info("preloop bots is stopping")
        finally:
            await hub.close()
    log.info("preloop bots stopped")


@contextlib.contextmanager
def _stopping_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM / SIGINT set the stop event instead of killing: the worker closes cleanly."""
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
