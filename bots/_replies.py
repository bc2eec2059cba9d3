"""What an inbound channel handler answers: a description of the HTTP response, no framework.

A channel's inbound handler (Slack's events, Mattermost's button callback, the email link
pages) takes the raw pieces of a request (method, query, headers, body bytes, a parsed form)
and the core's services, and returns a :class:`Reply`. The server only mounts it: its route
reads the pieces from the framework's request and turns the reply into the framework's
response (``server/channel_routes.py``). So ``bots`` never imports the server
(docs/decisions/0076-channel-identity-decisions.md).
"""

from __future__ import annotations

from typing import Any

import msgspec

JSON = "application/json"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

_json = msgspec.json.Encoder()


class Reply(msgspec.Struct, frozen=True, kw_only=True):
    status: int
    body: bytes
    media_type: str
    headers: dict[str, str] = {}


def json_reply(content: dict[str, Any], status: int = 200) -> Reply:
    return Reply(status=status, body=_json.encode(content), media_type=JSON)


def html_reply(page: str, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body=page.encode("utf-8"), media_type=HTML, headers=headers or {})


def text_reply(text: str, status: int) -> Reply:
    return Reply(status=status, body=text.encode("utf-8"), media_type=TEXT)
