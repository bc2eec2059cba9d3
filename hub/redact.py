"""Secrets never reach logs or audit rows: values under secret-looking keys, and values that
look like credentials, are replaced before anything is recorded."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?|secret|token|api[_-]?key|authorization|auth[_-]?header|"
    r"credential|private[_-]?key|cookie|session[_-]?key|signing[_-]?key)",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"(\bpl_[0-9a-f]{16}_[A-Za-z0-9_\-]{20,}"  # Preloop API keys
    r"|\bplrt_[0-9a-f]{16}_[A-Za-z0-9_\-]{20,}"  # Preloop runtime tokens (gateway)
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI-style keys
    r"|\bxox[abpr]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bAKIA[0-9A-Z]{16}\b"  # AWS access key ids
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\b[Bb]earer\s+[A-Za-z0-9._~+/\-]{16,}=*)"
)


def redact_text(text: str) -> str:
    return _SECRET_VALUE.sub(REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (JSON-like) with secrets replaced by ``[REDACTED]``."""
    if isinstance(value, dict):
        return {
            key: (
                REDACTED
                if isinstance(key, str) and _SECRET_KEY.search(key) and item
                else redact(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value
