"""A local fake of Slack (there is no installable Slack): its Web API records each call the
real slack_sdk client makes; Slack's side of a callback, signed as Slack signs it; and Socket
Mode: ``apps.connections.open`` hands out a ``ws://`` URL on this same fake, whose WebSocket
says ``hello``, carries the envelopes a test pushes, and records the acks the client sends.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier

from tests.integration.fakes import read_body

SIGNING_SECRET = "slack-signing-secret-for-tests-0123456789"
BOT_TOKEN = "xoxb-test-" + "0123456789"
APP_TOKEN = "xapp-1-test-" + "0123456789"
SOCKET_PATH = "/link"
CHANNEL_ID = "C0DEPLOYS"


class FakeSlack:
    """A tiny Slack Web API: records each call (method, arguments) and answers ok."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.acks: list[dict[str, Any]] = []  # what Socket Mode clients sent back
        self.app_tokens: list[str] = []  # the Authorization of each apps.connections.open
        self._lock = threading.Lock()
        self._ts = 0
        self.opened = 0  # Socket Mode connections ever opened
        self._sockets: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[str]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await self._socket(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        method = scope["path"].removeprefix("/api/")
        headers = dict(scope["headers"])
        if b"json" in headers.get(b"content-type", b""):
            args = json.loads(body or b"{}")
        else:
            args = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        answer: dict[str, Any] = {"ok": True}
        with self._lock:
            self.calls.append((method, args))
            if method == "chat.postMessage":
                self._ts += 1
                answer |= {"channel": CHANNEL_ID, "ts": f"1700000000.{self._ts:06d}"}
        if method == "auth.test":
            answer |= {"user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "team": "t"}
        if method == "apps.connections.open":
            token = headers.get(b"authorization", b"").decode().removeprefix("Bearer ")
            with self._lock:
                self.app_tokens.append(token)
            if token != APP_TOKEN:
                answer = {"ok": False, "error": "invalid_auth"}
            else:
                host, port = scope["server"]
                answer |= {"url": f"ws://{host}:{port}{SOCKET_PATH}"}
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

    async def _socket(self, receive: Any, send: Any) -> None:
        """One Socket Mode connection: hello, then pushed envelopes out and acks in."""
        if (await receive())["type"] != "websocket.connect":
            return
        outbox: asyncio.Queue[str] = asyncio.Queue()
        entry = (asyncio.get_running_loop(), outbox)
        with self._lock:  # before the handshake ends: a connected client can be pushed to
            self._sockets.append(entry)
            self.opened += 1
        try:
            await self._converse(outbox, receive, send)
        finally:
            with self._lock:
                self._sockets.remove(entry)

    async def _converse(self, outbox: asyncio.Queue[str], receive: Any, send: Any) -> None:
        await send({"type": "websocket.accept"})
        hello = {
            "type": "hello",
            "num_connections": 1,
            "debug_info": {"host": "fake-slack", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "A1"},
        }
        await send({"type": "websocket.send", "text": json.dumps(hello)})

        async def forward() -> None:
            while True:
                await send({"type": "websocket.send", "text": await outbox.get()})

        forwarding = asyncio.create_task(forward())
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text"):
                    with self._lock:
                        self.acks.append(json.loads(message["text"]))
        finally:
            forwarding.cancel()

    @property
    def connected(self) -> int:
        """How many Socket Mode connections are open."""
        with self._lock:
            return len(self._sockets)

    def push(self, kind: str, payload: dict[str, Any], *, accepts_payload: bool = False) -> str:
        """Send an envelope to every open Socket Mode connection (from any thread); returns
        its envelope id."""
        envelope_id = str(uuid.uuid4())
        self._send(
            {
                "envelope_id": envelope_id,
                "type": kind,
                "payload": payload,
                "accepts_response_payload": accepts_payload,
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )
        return envelope_id

    def ask_to_reconnect(self) -> None:
        """Slack's ``disconnect`` message (as before a server's maintenance): the client is
        expected to fetch a new URL and connect again."""
        self._send({"type": "disconnect", "reason": "refresh_requested"})

    def _send(self, message: dict[str, Any]) -> None:
        with self._lock:
            sockets = list(self._sockets)
        if not sockets:
            raise RuntimeError("no Socket Mode connection is open")
        for loop, outbox in sockets:
            loop.call_soon_threadsafe(outbox.put_nowait, json.dumps(message))

    def ack_of(self, envelope_id: str) -> dict[str, Any] | None:
        with self._lock:
            return next((a for a in self.acks if a.get("envelope_id") == envelope_id), None)

    def made(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [args for m, args in self.calls if m == method]


def signed(body: str, *, secret: str = SIGNING_SECRET, age: int = 0) -> dict[str, str]:
    timestamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def click(user: str, action_id: str, account_id: str) -> str:
    """A signed-mode button click: the form body Slack posts to ``/slack/events``."""
    return urlencode({"payload": json.dumps(block_actions(user, action_id, account_id))})


def block_actions(user: str, action_id: str, account_id: str) -> dict[str, Any]:
    """The ``block_actions`` payload of a click on one of Preloop's buttons."""
    return {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": user},
        "api_app_id": "A1",
        "channel": {"id": CHANNEL_ID},
        "trigger_id": f"trigger-{user}",
        "container": {"type": "message", "channel_id": CHANNEL_ID},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "preloop_decision",
                "value": account_id,
                "action_ts": "1700000001.000000",
            }
        ],
    }


def slash_command(user: str, text: str = "") -> dict[str, Any]:
    """The payload of ``/preloop`` as Socket Mode carries it (``slash_commands``)."""
    return {
        "token": "unused",
        "team_id": "T1",
        "channel_id": CHANNEL_ID,
        "user_id": user,
        "command": "/preloop",
        "text": text,
        "api_app_id": "A1",
        "response_url": "https://hooks.slack.invalid/commands/1",
        "trigger_id": f"trigger-{user}",
    }
