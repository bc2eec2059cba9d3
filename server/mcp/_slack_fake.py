"""A minimal stand-in for Slack's Web API, for ``preloop bench approvals --channel slack``.

There is no installable Slack. The benchmark points the servers' Slack client
(``PRELOOP_SLACK_API_URL``) here: bolt asks ``auth.test`` who the bot is before it handles the
first callback, and a handler may post an ephemeral reply. Every method answers ``ok`` (with
the bot's identity for ``auth.test``); calls are counted, nothing else is kept. It runs on
127.0.0.1 in a thread of the benchmark's own process, apart from the servers it serves.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class FakeSlackApi:
    """``with FakeSlackApi() as slack: slack.url`` (ends with ``/api/``, as Slack's does)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="preloop-bench-slack", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

    def __enter__(self) -> FakeSlackApi:
        self._thread.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def answer(self, method: str) -> dict[str, Any]:
        with self._lock:
            self.calls[method] += 1
        if method == "auth.test":
            return {"ok": True, "user_id": "UBENCHBOT", "bot_id": "BBENCH", "team_id": "TBENCH"}
        return {"ok": True}


def _handler(api: FakeSlackApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(api.answer(self.path.removeprefix("/api/"))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the benchmark prints its own report

    return Handler
