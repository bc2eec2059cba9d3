"""A local stand-in for OpenAI's and Anthropic's HTTP APIs, for the gateway's tests and
``preloop bench gateway`` (there is no installable model provider).

It speaks the wire formats the real SDKs expect: ``GET /v1/models``,
``POST /v1/chat/completions``, ``POST /v1/responses``, ``POST /v1/embeddings`` (OpenAI) and
``POST /v1/messages`` (Anthropic), each streaming (server-sent events, framed as the providers
frame them) or not (embeddings never stream). Answers are instant and deterministic:

- the reply is ``REPLY`` (or ``replies[model]`` when set, e.g. an AI reviewer's JSON verdict)
  cut to the request's max tokens, one token per word; a chat completion asking for ``n``
  choices gets ``n`` of them and ``n`` times the output tokens (a stream always has one choice);
- input tokens are ``len(body) // 8`` (at least 1), a quarter of them reported as cached;
- OpenAI chat streams end with a usage chunk only when ``stream_options.include_usage`` is set,
  like OpenAI's;
- an embedding is ``HashingEmbedder(dimensions).embed_one(text)`` (``hub.search.embedders``;
  ``fake_embeddings`` gives the same vectors to a test), ``dimensions`` from the request, else
  the model's native size when it is a well-known one (``text-embedding-3-small``: 1536), else
  ``EMBEDDING_DIMENSIONS``; a token array is embedded as its numbers joined by spaces;
  ``encoding_format`` ``base64`` answers little-endian float32, as OpenAI's; usage is
  ``prompt_tokens`` counted like chat's input tokens, nothing cached, no output.

It checks the provider key (``Authorization: Bearer`` for OpenAI, ``x-api-key`` plus
``anthropic-version`` for Anthropic) and answers 401 in the provider's envelope otherwise.
Errors on request: model ``fail-<status>`` (e.g. ``fail-429``, ``fail-500``) answers that
status in the provider's envelope. Embeddings model ``embed-fewer`` answers one vector less
than it was asked for (a provider that must not be trusted), ``embed-no-usage`` no ``usage``
(as some local embeddings servers). Model ``slow`` streams
``SLOW_WORDS`` words, one every ``slow_seconds`` (disconnect tests). Every request is kept in
``seen`` (path, headers, decoded body, the usage reported), so tests can assert what reached
the upstream.

Run it alone with ``python -m server.model_gateway.fake_provider --port 9100 --key sk-test``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec

from hub.search.embedders import HashingEmbedder, Vector
from hub.search.gateway_embedder import known_dimensions

REPLY = "Hello from the fake provider: every word of this answer is one output token."
SLOW_WORDS = 200
CREATED = 1_700_000_000
MODELS = ("gpt-fake", "gpt-fake-mini", "claude-fake", "embed-fake")
EMBEDDING_DIMENSIONS = 256  # when the request names no ``dimensions``

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.decode


class Seen(msgspec.Struct, kw_only=True):
    """One request as the fake received it, and the usage it reported."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    choices: int = 1


def input_tokens_of(body: bytes) -> int:
    return max(1, len(body) // 8)


class FakeProvider:
    """The ASGI app. ``key`` is the provider key it accepts."""

    def __init__(self, key: str = "sk-fake-provider-key", *, slow_seconds: float = 0.05) -> None:
        self.key = key
        self.slow_seconds = slow_seconds
        self.seen: list[Seen] = []
        self.keep = True  # False: keep nothing (the benchmark)
        self.replies: dict[str, str] = {}  # model -> its reply text, instead of REPLY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()  # startup
            await send({"type": "lifespan.startup.complete"})
            await receive()  # shutdown
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        anthropic = path == "/v1/messages"
        try:
            body = _decode(raw) if raw else {}
        except msgspec.DecodeError:
            body = None
        seen = Seen(method=scope["method"], path=path, headers=headers, body=body or {})
        if self.keep:
            self.seen.append(seen)
        if not self._authorised(headers, anthropic):
            await _error(send, 401, anthropic, "invalid x-api-key" if anthropic else None)
            return
        if anthropic and "anthropic-version" not in headers:
            await _error(send, 400, True, "anthropic-version: header is required")
            return
        if path == "/v1/models" and scope["method"] == "GET":
            data = [
                {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"} for m in MODELS
            ]
            await _json(send, 200, {"object": "list", "data": data})
            return
        if path not in ("/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings"):
            await _error(send, 404, anthropic, f"no route {path}")
            return
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            await _error(send, 400, anthropic, "the body must be JSON with a model")
            return
        model: str = body["model"]
        if model.startswith("fail-"):
            status = int(model.removeprefix("fail-") or 500)
            await _error(send, status, anthropic, f"the fake provider fails with {status}")
            return
        if path == "/v1/embeddings":
            await _embeddings(send, model, body, raw, seen)
            return
        words = self.replies.get(model, REPLY).split(" ")
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        limit = limit or body.get("max_output_tokens")
        if model == "slow":
            words = [f"w{i}" for i in range(SLOW_WORDS)]
        if isinstance(limit, int) and limit > 0:
            words = words[:limit]
        seen.input_tokens = input_tokens_of(raw)
        seen.cached_tokens = seen.input_tokens // 4
        choices = body.get("n") if path == "/v1/chat/completions" else None
        several = isinstance(choices, int) and choices > 1 and not body.get("stream")
        seen.choices = choices if several and isinstance(choices, int) else 1
        seen.output_tokens = len(words) * seen.choices
        if model == "stall":  # a provider that takes its time before answering at all
            await asyncio.sleep(self.slow_seconds)
        pause = self.slow_seconds if model == "slow" else 0.0
        answer = _ANSWERS[path]
        if body.get("stream"):
            await _stream(send, receive, answer(model, words, seen, body, True), pause)
        else:
            await _json(send, 200, next(iter(answer(model, words, seen, body, False)))[1])

    def _authorised(self, headers: dict[str, str], anthropic: bool) -> bool:
        if anthropic:
            return headers.get("x-api-key") == self.key
        return headers.get("authorization") == f"Bearer {self.key}"


# --- answers: each yields (event name or None, JSON object); a non-streamed answer is one ---
Answer = Callable[[str, list[str], Seen, dict[str, Any], bool], Any]


def _chat(model: str, words: list[str], seen: Seen, body: dict[str, Any], stream: bool) -> Any:
    usage = {
        "prompt_tokens": seen.input_tokens,
        "completion_tokens": seen.output_tokens,
        "total_tokens": seen.input_tokens + seen.output_tokens,
        "prompt_tokens_details": {"cached_tokens": seen.cached_tokens},
    }
    base = {"id": "chatcmpl-fake", "created": CREATED, "model": model}
    if not stream:
        message = {"role": "assistant", "content": " ".join(words)}
        choices = [
            {"index": i, "message": message, "finish_reason": "stop", "logprobs": None}
            for i in range(seen.choices)
        ]
        yield None, {**base, "object": "chat.completion", "choices": choices, "usage": usage}
        return
    options = body.get("stream_options") or {}
    with_usage = isinstance(options, dict) and options.get("include_usage") is True
    extra = {"usage": None} if with_usage else {}
    chunk = {**base, "object": "chat.completion.chunk"}
    first = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    yield None, {**chunk, "choices": [first], **extra}
    for i, word in enumerate(words):
        text = word if i == 0 else " " + word
        delta = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        yield None, {**chunk, "choices": [delta], **extra}
    yield None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], **extra}
    if with_usage:
        yield None, {**chunk, "choices": [], "usage": usage}
    yield None, None  # data: [DONE]


def _responses(model: str, words: list[str], seen: Seen, body: dict[str, Any], stream: bool) -> Any:
    usage = {
        "input_tokens": seen.input_tokens,
        "input_tokens_details": {"cached_tokens": seen.cached_tokens},
        "output_tokens": seen.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": seen.input_tokens + seen.output_tokens,
    }
    text = " ".join(words)
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [part],
    }
    response = {
        "id": "resp_fake",
        "object": "response",
        "created_at": CREATED,
        "model": model,
        "status": "completed",
        "output": [item],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }
    if not stream:
        yield None, response
        return
    started = {**response, "status": "in_progress", "output": [], "usage": None}
    sequence = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> tuple[str, dict[str, Any]]:
        return kind, {"type": kind, "sequence_number": next(sequence), **data}

    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    empty_item = {**item, "status": "in_progress", "content": []}
    yield event("response.output_item.added", output_index=0, item=empty_item)
    empty_part = {**part, "text": ""}
    place = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    yield event("response.content_part.added", **place, part=empty_part)
    for i, word in enumerate(words):
        yield event("response.output_text.delta", **place, delta=word if i == 0 else " " + word)
    yield event("response.output_text.done", **place, text=text)
    yield event("response.content_part.done", **place, part=part)
    yield event("response.output_item.done", output_index=0, item=item)
    yield event("response.completed", response=response)


def _messages(model: str, words: list[str], seen: Seen, body: dict[str, Any], stream: bool) -> Any:
    fresh = seen.input_tokens - seen.cached_tokens
    text = " ".join(words)
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": fresh,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": seen.cached_tokens,
            "output_tokens": seen.output_tokens,
        },
    }
    if not stream:
        yield None, message
        return
    start_usage = {**message["usage"], "output_tokens": 1}
    start = {**message, "content": [], "stop_reason": None, "usage": start_usage}
    yield "message_start", {"type": "message_start", "message": start}
    block = {"type": "text", "text": ""}
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    yield "ping", {"type": "ping"}
    for i, word in enumerate(words):
        delta = {"type": "text_delta", "text": word if i == 0 else " " + word}
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": seen.output_tokens},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def fake_embeddings(texts: list[str], dimensions: int = EMBEDDING_DIMENSIONS) -> list[Vector]:
    """The vectors the fake answers for ``texts``."""
    embedder = HashingEmbedder(dimensions)
    return [embedder.embed_one(text) for text in texts]


def _embedding_texts(given: Any) -> list[str] | None:
    """The texts of an embeddings ``input`` (token arrays as their numbers), or ``None``."""
    if isinstance(given, str):
        return [given]
    if not isinstance(given, list) or not given:
        return None
    if all(isinstance(item, str) for item in given):
        return list(given)
    if all(isinstance(item, int) for item in given):
        return [" ".join(map(str, given))]
    if all(isinstance(item, list) and item for item in given):
        return [" ".join(map(str, item)) for item in given]
    return None


async def _embeddings(send: Send, model: str, body: dict[str, Any], raw: bytes, seen: Seen) -> None:
    texts = _embedding_texts(body.get("input"))
    dimensions = body.get("dimensions", known_dimensions(model) or EMBEDDING_DIMENSIONS)
    encoding = body.get("encoding_format") or "float"
    if texts is None or not isinstance(dimensions, int) or dimensions < 1:
        await _error(send, 400, False, "'input' or 'dimensions' is invalid")
        return
    if encoding not in ("float", "base64"):
        await _error(send, 400, False, f"unknown encoding_format {encoding!r}")
        return
    vectors = fake_embeddings(texts, dimensions)
    if model == "embed-fewer":
        vectors = vectors[:-1]
    seen.input_tokens = input_tokens_of(raw)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": list(vector)
            if encoding == "float"
            else base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii"),
        }
        for i, vector in enumerate(vectors)
    ]
    usage = {"prompt_tokens": seen.input_tokens, "total_tokens": seen.input_tokens}
    answer = {"object": "list", "data": data, "model": model, "usage": usage}
    if model == "embed-no-usage":
        del answer["usage"]
    await _json(send, 200, answer)


_ANSWERS: dict[str, Answer] = {
    "/v1/chat/completions": _chat,
    "/v1/responses": _responses,
    "/v1/messages": _messages,
}

_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found"}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


async def _error(send: Send, status: int, anthropic: bool, message: str | None) -> None:
    if anthropic:
        kind = _ANTHROPIC_TYPES.get(status, "api_error")
        text = message or "error"
        await _json(send, status, {"type": "error", "error": {"type": kind, "message": text}})
        return
    code = "invalid_api_key" if status == 401 else None
    text = message or "Incorrect API key provided."
    kind = _OPENAI_TYPES.get(status, "rate_limit_exceeded" if status == 429 else "server_error")
    error = {"message": text, "type": kind, "param": None, "code": code}
    await _json(send, status, {"error": error})


async def _json(send: Send, status: int, body: Any) -> None:
    data = _encode(body)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _stream(send: Send, receive: Receive, events: Any, pause: float) -> None:
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    # a slow stream stops when its client leaves (a fast one ends before it matters)
    gone = asyncio.ensure_future(receive()) if pause else None
    for name, data in events:
        if gone is not None and gone.done():
            return
        if data is None:
            frame = b"data: [DONE]\n\n"
        elif name is None:
            frame = b"data: " + _encode(data) + b"\n\n"
        else:
            frame = b"event: " + name.encode() + b"\ndata: " + _encode(data) + b"\n\n"
        await send({"type": "http.response.body", "body": frame, "more_body": True})
        if pause:
            await asyncio.sleep(pause)
    if gone is not None:
        gone.cancel()
    await send({"type": "http.response.body", "body": b""})


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="A fake OpenAI/Anthropic provider.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", default="sk-fake-provider-key")
    args = parser.parse_args(argv)
    app = FakeProvider(args.key)
    app.keep = False
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off"
    )


if __name__ == "__main__":
    main()
