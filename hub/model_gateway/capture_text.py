"""What capture keeps of a request and an answer: text pulled out of the three wire formats,
secrets redacted, cut to a byte cap, and the snippets search shows.

Redaction (decision 0109), applied in every mode before anything is stored:

- by key name, anywhere in the JSON: a value under ``authorization``, ``api_key``/``apikey``/
  ``x-api-key``, ``password``/``passwd``/``passphrase``, ``secret`` (``client_secret``...),
  ``token`` (``access_token``, ``refresh_token``... but not ``max_tokens``), ``private_key``,
  ``access_key``, ``cookie``, ``credential(s)`` is replaced by ``[REDACTED]``;
- by value shape, in every string (the JSON's and the assembled answer's): provider keys
  (``sk-…``, ``sk-ant-…``), Preloop's API keys, runtime and access tokens (``pl_``, ``plrt_``,
  ``plat_``), JWTs, AWS access key ids, GitHub and Slack tokens, PEM private keys, and
  ``Bearer …`` credentials.

A stream's answer is assembled from its deltas first and redacted as one text, so a secret
split across chunks is still found.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from hub.model_gateway.capture_records import CaptureMode

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(
    r"^(?:.*[_\-.])?(?:authorization|api[_\-]?key|apikey|password|passwd|passphrase|"
    r"secret|token|private[_\-]?key|access[_\-]?key|cookie|credentials?)$",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"\bsk-ant-[A-Za-z0-9_\-]{16,}"  # Anthropic keys
    r"|\bsk-[A-Za-z0-9_\-]{16,}"  # OpenAI-style keys (project keys: sk-proj-…)
    r"|\bpl_[0-9a-f]{16}_[A-Za-z0-9_\-]{16,}"  # Preloop API keys
    r"|\bplrt_[0-9a-f]{16}_[A-Za-z0-9_\-]{16,}"  # Preloop runtime tokens
    r"|\bplat_[0-9a-f]{16}_[A-Za-z0-9_\-]{16,}"  # Preloop access tokens
    r"|\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"  # JWTs
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"  # AWS access key ids
    r"|\bgh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|\bxox[abpr]-[A-Za-z0-9\-]{10,}"  # Slack tokens
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\b[Bb]earer\s+[A-Za-z0-9._~+/\-]{16,}=*"
)
_TEXT_KEYS = frozenset({"content", "text", "input", "instructions", "system", "prompt"})
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def redact_text(text: str) -> str:
    return _SECRET_VALUE.sub(REDACTED, text)


def redact_json(value: Any) -> Any:
    """A copy of ``value`` with secrets replaced, by key name and by value shape."""
    if isinstance(value, dict):
        return {
            key: REDACTED
            if isinstance(key, str) and _SECRET_KEY.match(key) and value[key] not in (None, "")
            else redact_json(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_json(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def cap(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (on a character boundary), and
    whether it was cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode(errors="ignore"), True


def _decode(body: bytes) -> Any:
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def _texts(value: Any, out: list[str], *, under_text_key: bool = False) -> None:
    if isinstance(value, str):
        if under_text_key and value:
            out.append(value)
    elif isinstance(value, list):
        for item in value:
            _texts(item, out, under_text_key=under_text_key)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and _SECRET_KEY.match(key):
                continue
            _texts(item, out, under_text_key=key in _TEXT_KEYS)


def request_text(body: bytes, mode: CaptureMode) -> str:
    """Full mode: the request's JSON, redacted (or its bytes as text when it is not JSON);
    preview: the prompt's texts (system, messages, input), one per line, redacted."""
    decoded = _decode(body)
    if decoded is None:
        return redact_text(body.decode(errors="replace"))
    if mode is CaptureMode.FULL:
        return msgspec.json.encode(redact_json(decoded)).decode()
    out: list[str] = []
    _texts(decoded, out)
    return redact_text("\n".join(out))


def answer_text(body: bytes, endpoint: str) -> str:
    """The answer's text of a whole (not streamed) answer, redacted."""
    decoded = _decode(body)
    if not isinstance(decoded, dict):
        return redact_text(body.decode(errors="replace"))
    out: list[str] = []
    if endpoint == "openai.chat":
        for choice in decoded.get("choices") or ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                out.append(message["content"])
    elif endpoint == "openai.responses":
        for item in decoded.get("output") or ():
            for part in (item.get("content") or ()) if isinstance(item, dict) else ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    out.append(part["text"])
    elif endpoint == "anthropic.messages":
        for part in decoded.get("content") or ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    if not out and "error" in decoded:
        return redact_text(msgspec.json.encode(redact_json(decoded)).decode())
    return redact_text("".join(out))


def stream_text(raw: bytes, endpoint: str) -> str:
    """The answer's text assembled from a server-sent event stream's deltas, then redacted."""
    out: list[str] = []
    for event in raw.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(
            line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")
        )
        if not data or data == b"[DONE]":
            continue
        decoded = _decode(data)
        if isinstance(decoded, dict):
            out.append(_delta(decoded, endpoint))
    return redact_text("".join(out))


def _delta(event: dict[str, Any], endpoint: str) -> str:
    if endpoint == "openai.chat":
        parts = []
        for choice in event.get("choices") or ():
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if isinstance(delta, dict) and isinstance(delta.get("content"), str):
                parts.append(delta["content"])
        return "".join(parts)
    if endpoint == "openai.responses":
        if event.get("type") == "response.output_text.delta" and isinstance(
            event.get("delta"), str
        ):
            return str(event["delta"])
        return ""
    delta = event.get("delta")
    if event.get("type") == "content_block_delta" and isinstance(delta, dict):
        text = delta.get("text")
        return text if isinstance(text, str) else ""
    return ""


def words(text: str) -> list[str]:
    """The lower-cased words of a query (as full-text search splits it)."""
    return [w.lower() for w in _WORD.findall(text)]


def snippet(text: str, query_words: list[str], *, width: int = 160) -> str:
    """About ``width`` characters of ``text`` around the first query word found, each
    occurrence of a query word marked ``[[word]]``; the start of the text when none is."""
    if not text:
        return ""
    lowered = text.lower()
    found = [lowered.find(w) for w in query_words if w and w in lowered]
    first = min(found) if found else 0
    start = max(0, first - width // 3)
    end = min(len(text), start + width)
    piece = text[start:end]
    if query_words:
        pattern = re.compile(
            "|".join(re.escape(w) for w in sorted(set(query_words), key=len, reverse=True)),
            re.IGNORECASE,
        )
        piece = pattern.sub(lambda m: f"[[{m.group(0)}]]", piece)
    piece = " ".join(piece.split())
    return ("…" if start > 0 else "") + piece + ("…" if end < len(text) else "")
