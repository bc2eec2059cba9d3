"""Local fakes of the services Preloop talks to that cannot run here (Slack, Mattermost)
and a real SMTP server's mailbox, shared by the channel tests."""

from collections.abc import Awaitable, Callable
from typing import Any


async def read_body(receive: Callable[[], Awaitable[Any]]) -> bytes:
    """The whole body of an ASGI HTTP request, however many messages it came in."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return body
