"""The three wire formats the gateway speaks: what it decodes of a request, and where each
format puts its usage, in a whole answer and in a stream.

The gateway forwards bytes. Of a request it decodes only ``RequestHead`` (model, stream flag,
stream options, max tokens, choices); of an answer only the usage, through narrow Structs, so
the rest of a body is skipped by msgspec without building objects.

Streams are read incrementally: a ``Meter`` is fed the upstream's chunks as they come, splits
server-sent events only to find the usage, and hands back the bytes to forward: the same chunk,
unchanged, except for an OpenAI chat stream whose usage chunk the gateway asked for on the
client's behalf (``strip_usage``), where whole events are forwarded and that chunk is dropped.

Usage is normalised to ``hub.model_gateway.records.Usage``: cached tokens are part of input tokens
(OpenAI's convention); Anthropic's cache reads and cache writes are added to its input count.
A stream cut before its usage arrives is estimated: one output token per content delta seen,
and the input tokens the provider reported, else a quarter of the request's bytes.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from hub.deep_json import refuse_deep_json
from hub.errors import ValidationError
from hub.model_gateway.records import Usage

# The largest value an output limit may have (a 32-bit integer, as the providers' own), and
# the most choices one request may ask for (OpenAI's limit on ``n``).
MAX_TOKENS_FIELD = 2**31 - 1
MAX_CHOICES = 128


class RequestHead(msgspec.Struct, kw_only=True):
    """What the gateway reads of a request body; everything else passes through untouched.
    An integer field is an integer: ``true``, ``16.0`` or ``"16"`` is refused by the decoder."""

    model: str | None = None
    stream: bool | None = False
    stream_options: dict[str, object] | None = None
    max_tokens: int | None = None  # OpenAI chat (legacy) and Anthropic
    max_completion_tokens: int | None = None  # OpenAI chat
    max_output_tokens: int | None = None  # OpenAI Responses
    n: int | None = None  # OpenAI chat: how many choices, each up to the max tokens

    @property
    def wants_usage(self) -> bool:
        options = self.stream_options or {}
        return options.get("include_usage") is True


_head_decoder = msgspec.json.Decoder(RequestHead)


def decode_head(body: bytes) -> RequestHead:
    """``ValidationError`` (400 in the envelope) for a body that is not a JSON object with a
    string ``model``."""
    try:
        with refuse_deep_json("the request body"):
            head = _head_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValidationError(
            f"the request body is not valid JSON for this endpoint: {exc}"
        ) from exc
    if not head.model:
        raise ValidationError("the request body must name a model ('model')")
    return head


class OutputBound(msgspec.Struct, frozen=True):
    """The most output a request allows: ``max_tokens`` per choice (``None`` when it sets no
    limit: the price book's default applies) times ``choices``."""

    max_tokens: int | None = None
    choices: int = 1


def output_bound(head: RequestHead, dialect: Dialect) -> OutputBound:
    """The dialect's output limits read from ``head``: the largest of its max-tokens fields
    that is set, and its number of choices. A value below 1 or above the maximum is refused
    (``ValidationError``, a 400 naming the field), as the providers refuse it: a negative
    ``max_tokens`` must not reserve nothing and reach a provider that ignores it."""
    limits = [_limit(head, name, MAX_TOKENS_FIELD) for name in dialect.limits]
    given = [limit for limit in limits if limit is not None]
    choices = _limit(head, dialect.choices, MAX_CHOICES) if dialect.choices else None
    return OutputBound(max(given) if given else None, choices or 1)


def _limit(head: RequestHead, name: str, most: int) -> int | None:
    value: int | None = getattr(head, name)
    if value is None or 1 <= value <= most:
        return value
    shown = str(value) if abs(value) < 10**15 else "a larger number"
    raise ValidationError(f"'{name}' must be an integer from 1 to {most}, not {shown}", field=name)


def rewrite(body: bytes, *, model: str | None, include_usage: bool) -> bytes:
    """The body with ``model`` replaced and/or ``stream_options.include_usage`` set; the only
    changes the gateway makes to a request (everything else is re-encoded as it was)."""
    with refuse_deep_json("the request body"):
        decoded = msgspec.json.decode(body)
    if model is not None:
        decoded["model"] = model
    if include_usage:
        options = decoded.get("stream_options")
        decoded["stream_options"] = {**(options if isinstance(options, dict) else {})}
        decoded["stream_options"]["include_usage"] = True
    with refuse_deep_json("the request body"):
        return msgspec.json.encode(decoded)


# --- usage shapes -------------------------------------------------------------------------
class _Cached(msgspec.Struct):
    cached_tokens: int | None = 0


class _ChatUsage(msgspec.Struct):
    prompt_tokens: int | None = 0
    completion_tokens: int | None = 0
    prompt_tokens_details: _Cached | None = None

    def usage(self) -> Usage:
        cached = (self.prompt_tokens_details and self.prompt_tokens_details.cached_tokens) or 0
        return Usage(
            input_tokens=self.prompt_tokens or 0,
            output_tokens=self.completion_tokens or 0,
            cached_tokens=cached,
        )


class _ResponsesUsage(msgspec.Struct):
    input_tokens: int | None = 0
    output_tokens: int | None = 0
    input_tokens_details: _Cached | None = None

    def usage(self) -> Usage:
        cached = (self.input_tokens_details and self.input_tokens_details.cached_tokens) or 0
        return Usage(
            input_tokens=self.input_tokens or 0,
            output_tokens=self.output_tokens or 0,
            cached_tokens=cached,
        )


class _AnthropicUsage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None

    def usage(self) -> Usage:
        cached = self.cache_read_input_tokens or 0
        fresh = (self.input_tokens or 0) + (self.cache_creation_input_tokens or 0)
        return Usage(
            input_tokens=fresh + cached,
            output_tokens=self.output_tokens or 0,
            cached_tokens=cached,
        )


class _ChatBody(msgspec.Struct):
    usage: _ChatUsage | None = None
    choices: list[msgspec.Raw] | None = None


class _ResponsesBody(msgspec.Struct):
    usage: _ResponsesUsage | None = None


class _ResponsesEvent(msgspec.Struct):
    response: _ResponsesBody | None = None


class _AnthropicMessage(msgspec.Struct):
    usage: _AnthropicUsage | None = None


class _AnthropicEvent(msgspec.Struct):
    message: _AnthropicMessage | None = None  # message_start
    usage: _AnthropicUsage | None = None  # message_delta


_chat_body = msgspec.json.Decoder(_ChatBody)
_responses_body = msgspec.json.Decoder(_ResponsesBody)
_responses_event = msgspec.json.Decoder(_ResponsesEvent)
_anthropic_message = msgspec.json.Decoder(_AnthropicMessage)
_anthropic_event = msgspec.json.Decoder(_AnthropicEvent)


def chat_usage(body: bytes) -> Usage | None:
    try:
        usage = _chat_body.decode(body).usage
    except (msgspec.DecodeError, RecursionError):
        return None
    return usage.usage() if usage else None


def responses_usage(body: bytes) -> Usage | None:
    try:
        usage = _responses_body.decode(body).usage
    except (msgspec.DecodeError, RecursionError):
        return None
    return usage.usage() if usage else None


def embeddings_usage(body: bytes) -> Usage | None:
    """An OpenAI embeddings answer's usage: ``usage.prompt_tokens`` in, nothing out."""
    usage = chat_usage(body)
    return Usage(input_tokens=usage.input_tokens) if usage else None


def anthropic_usage(body: bytes) -> Usage | None:
    try:
        usage = _anthropic_message.decode(body).usage
    except (msgspec.DecodeError, RecursionError):
        return None
    return usage.usage() if usage else None


# --- streams ------------------------------------------------------------------------------
def _has_usage(data: bytes) -> bool:
    return b'"usage":{' in data or b'"usage": {' in data


class Meter:
    """Reads one SSE stream for its usage. ``feed`` returns the bytes to forward now;
    ``finish`` what is left at the end. Subclasses look at one event at a time."""

    def __init__(self, *, strip_usage: bool = False) -> None:
        self.strip_usage = strip_usage
        self.usage: Usage | None = None
        self.reported_input: int | None = None
        self.deltas = 0
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        buffer = self._buffer + chunk if self._buffer else chunk
        kept: list[bytes] = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            event = buffer[start : end + 2]
            if self._event(event) or not self.strip_usage:
                kept.append(event)
            start = end + 2
        self._buffer = buffer[start:]
        if not self.strip_usage:
            return chunk  # forwarded as it came; the buffer only serves the scan
        return b"".join(kept)

    def finish(self) -> bytes:
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            self._event(rest)
        return rest if self.strip_usage else b""

    def estimated(self, input_bytes: int) -> Usage:
        """The usage reported, or an estimate when the stream was cut before it came."""
        if self.usage is not None:
            return self.usage
        return Usage(
            input_tokens=self.reported_input
            if self.reported_input is not None
            else input_bytes // 4,
            output_tokens=self.deltas,
        )

    def _event(self, event: bytes) -> bool:
        """Look at one event (its bytes, with the blank line); False drops it."""
        name = b""
        data = b""
        for line in event.replace(b"\r\n", b"\n").split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].lstrip() if not data else data + b"\n" + line[5:].lstrip()
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        return self.look(name, data)

    def look(self, name: bytes, data: bytes) -> bool:
        raise NotImplementedError


class ChatMeter(Meter):
    """OpenAI chat completions: the usage comes in a last chunk with no choices, sent only when
    ``stream_options.include_usage`` was asked for."""

    def look(self, name: bytes, data: bytes) -> bool:
        if not data or data == b"[DONE]":
            return True
        if _has_usage(data):
            try:
                chunk = _chat_body.decode(data)
            except (msgspec.DecodeError, RecursionError):
                return True
            if chunk.usage is not None:
                self.usage = chunk.usage.usage()
                return not (self.strip_usage and not chunk.choices)
        self.deltas += 1
        return True


class ResponsesMeter(Meter):
    """OpenAI Responses: ``response.completed`` (or ``.incomplete``/``.failed``) carries the
    usage in its ``response``."""

    def look(self, name: bytes, data: bytes) -> bool:
        if b"output_text.delta" in name or (not name and b'"response.output_text.delta"' in data):
            self.deltas += 1
        elif _has_usage(data):
            try:
                event = _responses_event.decode(data)
            except (msgspec.DecodeError, RecursionError):
                return True
            if event.response is not None and event.response.usage is not None:
                self.usage = event.response.usage.usage()
        return True


class AnthropicMeter(Meter):
    """Anthropic messages: ``message_start`` carries the input (and cache) tokens,
    ``message_delta`` the cumulative output tokens."""

    def __init__(self, *, strip_usage: bool = False) -> None:
        super().__init__(strip_usage=strip_usage)
        self._start: _AnthropicUsage | None = None

    def look(self, name: bytes, data: bytes) -> bool:
        if name == b"content_block_delta":
            self.deltas += 1
        elif name in (b"message_start", b"message_delta") and b'"usage"' in data:
            try:
                event = _anthropic_event.decode(data)
            except (msgspec.DecodeError, RecursionError):
                return True
            if event.message is not None and event.message.usage is not None:
                self._start = event.message.usage
                self.reported_input = self._start.usage().input_tokens
            elif event.usage is not None:
                start = self._start or _AnthropicUsage()
                merged = _AnthropicUsage(
                    input_tokens=event.usage.input_tokens
                    if event.usage.input_tokens is not None
                    else start.input_tokens,
                    output_tokens=event.usage.output_tokens,
                    cache_read_input_tokens=event.usage.cache_read_input_tokens
                    if event.usage.cache_read_input_tokens is not None
                    else start.cache_read_input_tokens,
                    cache_creation_input_tokens=event.usage.cache_creation_input_tokens
                    if event.usage.cache_creation_input_tokens is not None
                    else start.cache_creation_input_tokens,
                )
                self.usage = merged.usage()
        return True

    def estimated(self, input_bytes: int) -> Usage:
        if self.usage is None and self._start is not None:
            started = self._start.usage()
            return Usage(
                input_tokens=started.input_tokens,
                output_tokens=max(self.deltas, started.output_tokens),
                cached_tokens=started.cached_tokens,
            )
        return super().estimated(input_bytes)


class Dialect(msgspec.Struct, frozen=True):
    """One endpoint's format: its ledger name, the family its providers speak, the path
    under the provider's base URL, and where its usage is."""

    endpoint: str
    family: str
    upstream_path: str
    usage: Callable[[bytes], Usage | None]
    meter: Callable[..., Meter]
    limits: tuple[str, ...] = ()  # the request fields that cap output tokens (per choice)
    choices: str | None = None  # the request field that multiplies them, if any


CHAT = Dialect(
    "openai.chat",
    "openai",
    "/chat/completions",
    chat_usage,
    ChatMeter,
    limits=("max_completion_tokens", "max_tokens"),
    choices="n",
)
RESPONSES = Dialect(
    "openai.responses",
    "openai",
    "/responses",
    responses_usage,
    ResponsesMeter,
    limits=("max_output_tokens",),
)
EMBEDDINGS = Dialect(  # never streamed: its meter is never fed (server/model_gateway/embeddings.py)
    "openai.embeddings",
    "openai",
    "/embeddings",
    embeddings_usage,
    ChatMeter,
)
MESSAGES = Dialect(
    "anthropic.messages",
    "anthropic",
    "/v1/messages",
    anthropic_usage,
    AnthropicMeter,
    limits=("max_tokens",),
)
