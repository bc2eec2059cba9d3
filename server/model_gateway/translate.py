"""OpenAI chat completions ↔ Anthropic messages, for the in-process ``ModelGateway.chat`` only
(AI approval asks in OpenAI's shape whatever provider answers). The HTTP endpoints never
translate: they forward bytes in the format the client spoke.

Only text conversations are translated: system messages become Anthropic's ``system``, text
parts are joined, and the answer's text blocks become the one choice's content."""

from __future__ import annotations

from typing import Any

from hub.errors import ValidationError

DEFAULT_MAX_TOKENS = 1024
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    raise ValidationError("only text messages can be sent to an Anthropic model in process")


def to_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    system = [
        _text(m.get("content"))
        for m in body.get("messages", [])
        if m.get("role") in ("system", "developer")
    ]
    messages = [
        {"role": m["role"], "content": _text(m.get("content"))}
        for m in body.get("messages", [])
        if m.get("role") in ("user", "assistant")
    ]
    request: dict[str, Any] = {
        "model": body["model"],
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }
    if system:
        request["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            request[name] = body[name]
    return request


def from_anthropic(answer: dict[str, Any]) -> dict[str, Any]:
    text = "".join(b.get("text", "") for b in answer.get("content", []) if b.get("type") == "text")
    usage = answer.get("usage") or {}
    cached = usage.get("cache_read_input_tokens") or 0
    prompt = (
        (usage.get("input_tokens") or 0) + cached + (usage.get("cache_creation_input_tokens") or 0)
    )
    completion = usage.get("output_tokens") or 0
    return {
        "id": answer.get("id", ""),
        "object": "chat.completion",
        "created": 0,
        "model": answer.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": _FINISH.get(answer.get("stop_reason") or "", "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }
