"""A local fake of Slack's Web API (there is no installable Slack): records each call the
real slack_sdk client makes; and Slack's side of a callback, signed as Slack signs it."""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier

SIGNING_SECRET = "slack-signing-secret-for-tests-0123456789"
BOT_TOKEN = "xoxb-test-" + "0123456789"
CHANNEL_ID = "C0DEPLOYS"


class FakeSlack:
    """A tiny Slack Web API: records each call (method, arguments) and answers ok."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._ts = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
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
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": json.dumps(answer).encode()})

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
    payload = {
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
    return urlencode({"payload": json.dumps(payload)})
