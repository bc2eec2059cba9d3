"""The stream meters find the usage wherever the upstream's chunks happen to split the events,
and forward exactly the bytes they were given (or, when stripping, all but the usage chunk).
A request's output bound (max tokens times choices) is read per dialect, and a limit a provider
would refuse is refused."""

from __future__ import annotations

import msgspec
import pytest

from hub.errors import ValidationError
from hub.model_gateway.records import Usage
from server.model_gateway import dialects
from server.model_gateway.dialects import (
    AnthropicMeter,
    ChatMeter,
    Dialect,
    Meter,
    OutputBound,
    ResponsesMeter,
    embeddings_usage,
    rewrite,
)
from server.model_gateway.embeddings import input_tokens

CHAT = (
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}],"usage":null}\n\n'
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":" there"}}],"usage":null}\n\n'
    b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":2,'
    b'"prompt_tokens_details":{"cached_tokens":4}}}\n\n'
    b"data: [DONE]\n\n"
)
RESPONSES = (
    b'event: response.created\ndata: {"type":"response.created","response":{"usage":null}}\n\n'
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
    b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":'
    b'{"input_tokens":7,"output_tokens":1,"input_tokens_details":{"cached_tokens":2}}}}\n\n'
)
ANTHROPIC = (
    b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":5,'
    b'"cache_read_input_tokens":3,"cache_creation_input_tokens":2,"output_tokens":1}}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"Hi"}}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def run(meter: Meter, stream: bytes, size: int) -> bytes:
    out = b"".join(meter.feed(stream[i : i + size]) for i in range(0, len(stream), size))
    return out + meter.finish()


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_every_meter_finds_the_usage_across_chunk_boundaries(size: int) -> None:
    chat, responses, anthropic = ChatMeter(), ResponsesMeter(), AnthropicMeter()
    assert run(chat, CHAT, size) == CHAT
    assert run(responses, RESPONSES, size) == RESPONSES
    assert run(anthropic, ANTHROPIC, size) == ANTHROPIC
    assert chat.usage == Usage(input_tokens=12, output_tokens=2, cached_tokens=4)
    assert responses.usage == Usage(input_tokens=7, output_tokens=1, cached_tokens=2)
    assert anthropic.usage == Usage(input_tokens=10, output_tokens=9, cached_tokens=3)


@pytest.mark.parametrize("size", [1, 7, 10_000])
def test_stripping_drops_only_the_usage_chunk(size: int) -> None:
    meter = ChatMeter(strip_usage=True)
    out = run(meter, CHAT, size)
    assert b'"usage":{' not in out
    assert out == CHAT.replace(CHAT.split(b"\n\n")[2] + b"\n\n", b"")
    assert meter.usage == Usage(input_tokens=12, output_tokens=2, cached_tokens=4)


def test_a_cut_stream_is_estimated_from_what_was_seen() -> None:
    chat = ChatMeter()
    chat.feed(CHAT[: CHAT.index(b"data: {", 10)])  # the first chunk only
    assert chat.estimated(400) == Usage(input_tokens=100, output_tokens=1)
    anthropic = AnthropicMeter()
    anthropic.feed(ANTHROPIC[: ANTHROPIC.index(b"event: message_delta")])
    assert anthropic.estimated(400) == Usage(input_tokens=10, output_tokens=1, cached_tokens=3)


def test_rewrite_changes_only_the_model_and_stream_options() -> None:
    body = b'{"model":"fast","stream":true,"stream_options":{"x":1},"messages":[]}'
    assert rewrite(body, model="gpt-fake", include_usage=True) == (
        b'{"model":"gpt-fake","stream":true,"stream_options":{"x":1,"include_usage":true},'
        b'"messages":[]}'
    )


def bound(dialect: Dialect, **fields: object) -> OutputBound:
    head = dialects.decode_head(msgspec.json.encode({"model": "m", **fields}))
    return dialects.output_bound(head, dialect)


@pytest.mark.parametrize(
    ("dialect", "fields", "expected"),
    [
        (dialects.CHAT, {}, OutputBound(None, 1)),
        (dialects.CHAT, {"max_tokens": 16}, OutputBound(16, 1)),
        (dialects.CHAT, {"max_completion_tokens": 16, "n": 5}, OutputBound(16, 5)),
        (dialects.CHAT, {"max_tokens": 8, "max_completion_tokens": 32}, OutputBound(32, 1)),
        (dialects.CHAT, {"n": 3}, OutputBound(None, 3)),  # the default, three times
        (dialects.RESPONSES, {"max_output_tokens": 64}, OutputBound(64, 1)),
        # a field the endpoint does not read does not lower the bound
        (dialects.RESPONSES, {"max_tokens": 1, "n": 9}, OutputBound(None, 1)),
        (dialects.MESSAGES, {"max_tokens": 1024}, OutputBound(1024, 1)),
        (dialects.MESSAGES, {"max_completion_tokens": 1}, OutputBound(None, 1)),
    ],
)
def test_the_output_bound_reads_each_dialects_limits_and_choices(
    dialect: Dialect, fields: dict[str, object], expected: OutputBound
) -> None:
    assert expected == bound(dialect, **fields)


@pytest.mark.parametrize(
    ("dialect", "field", "value"),
    [
        (dialects.CHAT, "max_tokens", -1),
        (dialects.CHAT, "max_tokens", 0),
        (dialects.CHAT, "max_completion_tokens", -5),
        (dialects.CHAT, "max_completion_tokens", 2**31),
        (dialects.CHAT, "n", 0),
        (dialects.CHAT, "n", -2),
        (dialects.CHAT, "n", 129),
        (dialects.RESPONSES, "max_output_tokens", -1),
        (dialects.RESPONSES, "max_output_tokens", 10**30),
        (dialects.MESSAGES, "max_tokens", -1),
        (dialects.MESSAGES, "max_tokens", 0),
    ],
)
def test_an_output_limit_out_of_range_is_refused_naming_the_field(
    dialect: Dialect, field: str, value: int
) -> None:
    with pytest.raises(ValidationError) as raised:
        bound(dialect, **{field: value})
    assert f"'{field}' must be an integer from 1 to" in raised.value.message


@pytest.mark.parametrize("value", [True, False, 16.0, 1e3, "16", [16], {"n": 1}])
@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "max_output_tokens", "n"])
def test_an_output_limit_that_is_not_an_integer_is_refused_naming_the_field(
    field: str, value: object
) -> None:
    with pytest.raises(ValidationError) as raised:
        bound(dialects.CHAT, **{field: value})
    assert f"$.{field}" in raised.value.message


# --- embeddings: what a request reserves ------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "tokens"),
    [
        ("abc", 2),  # ceil(3 / 2)
        ("a", 1),
        ("é", 1),  # two UTF-8 bytes
        (["abcd", "ab", "a"], 2 + 1 + 1),
        ([5, 6, 7], 3),  # one token array: its tokens
        ([[1, 2], [3]], 3),
    ],
)
def test_embeddings_input_tokens(given: object, tokens: int) -> None:
    body = msgspec.json.encode({"model": "m", "input": given})
    assert input_tokens(body) == tokens


def test_embeddings_usage_is_input_only() -> None:
    answer = b'{"data": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3}}'
    assert embeddings_usage(answer) == Usage(input_tokens=7)
    assert embeddings_usage(b'{"data": []}') is None
