"""A real SMTP server (aiosmtpd) on an ephemeral port and what it received."""

from __future__ import annotations

import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class Mailbox:
    """What the SMTP server received, one parsed message per recipient."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((rcpt, content))
        return "250 OK"

    def to(self, address: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return [m for m in self.messages if m[0] == address]


class SmtpController(Controller):
    """aiosmtpd's controller on an ephemeral port (it checks readiness on ``self.port``)."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()
