"""Slack Socket Mode: the worker's own WebSocket to Slack, for installs with no public URL.

    apps.connections.open (app token xapp-…)  ─▶ a wss:// URL, valid once
    WebSocket  ◀── hello, then envelopes {envelope_id, type, payload, accepts_response_payload}
               ──▶ an ack per envelope {envelope_id[, payload]}

slack_sdk's aiohttp ``SocketModeClient`` (through slack-bolt's ``AsyncSocketModeHandler``)
keeps the connection: it pings, and it reconnects with a fresh URL when Slack asks it to
(``disconnect`` envelopes) or the connection drops. Each envelope's payload is dispatched to
the same bolt app, and so the same handlers, as ``/slack/events``
(``bots/slack/interactions.py``);
there is no signature to check, the app token that opened the connection is the proof.

The first URL is asked for here, before connecting, so a refused token is a clear error at
start (the client would otherwise log and retry forever).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import ClientError
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.errors import SlackApiError

from bots.slack.interactions import slack_app
from hub.channel_decisions import ChannelDecisions
from hub.errors import ConfigError
from hub.settings import SlackSettings

log = logging.getLogger("preloop.slack")


@asynccontextmanager
async def slack_socket_mode(
    decisions: ChannelDecisions, settings: SlackSettings
) -> AsyncIterator[None]:
    """Connected to Slack in Socket Mode while the block runs; closed on the way out."""
    handler = AsyncSocketModeHandler(
        slack_app(decisions, settings, socket_mode=True), app_token=settings.app_token, logger=log
    )
    try:
        handler.client.wss_uri = await _first_url(handler)
        await handler.connect_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt
        log.info("Slack Socket Mode connected")
        yield
    finally:
        await handler.close_async()  # type: ignore[no-untyped-call]  # untyped in slack-bolt


async def _first_url(handler: AsyncSocketModeHandler) -> str:
    try:
        url: str = await handler.client.issue_new_wss_url()
    except SlackApiError as exc:
        error = exc.response.get("error", "refused")
        raise ConfigError(
            f"Slack refused PRELOOP_SLACK_APP_TOKEN (apps.connections.open: {error}); is it "
            "an app-level token with connections:write, and is Socket Mode enabled?"
        ) from exc
    except (OSError, ClientError) as exc:
        raise ConfigError(
            f"cannot reach Slack at PRELOOP_SLACK_API_URL for Socket Mode: {exc}"
        ) from exc
    return url
