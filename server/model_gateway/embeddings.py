"""What the gateway reads of an OpenAI embeddings request (``POST /openai/v1/embeddings``), and
the input tokens it reserves for one.

An embeddings request has no output to bound: its reservation is its input alone, estimated
from the body before the provider is asked, at the model's input price (``Prices.cost`` of the
estimate, so an unpriced model pays the configured fallback as chat does):

    "input": "text"                    ceil(UTF-8 bytes / 2), at least 1
    "input": ["text", ...]             the same, per string
    "input": [1, 2, 3]                 the tokens given (one token array)
    "input": [[1, 2], [3], ...]        the tokens given (several)

The same estimate is what the ledger records when a provider answers without ``usage`` (some
local embeddings servers do), so such a request is never free. A body that is not one of these
shapes is refused (``ValidationError``, a 400 naming the field) before anything is reserved;
so are an ``encoding_format`` other than ``float``/``base64`` and ``dimensions`` below 1.
Streaming does not apply: the answer is read whole.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from hub.deep_json import refuse_deep_json
from hub.errors import ValidationError

MAX_INPUTS = 2048  # OpenAI's limit of inputs per request
MAX_DIMENSIONS = 65_536
ENCODINGS = ("float", "base64")
_SHAPES = "a string, a list of strings, a token array or a list of token arrays"


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    """The fields the gateway checks; the rest of the body passes through untouched."""

    input: Any = None
    dimensions: int | None = None
    encoding_format: str | None = None


_decoder = msgspec.json.Decoder(EmbeddingsRequest)


def input_tokens(body: bytes) -> int:
    """The input tokens ``body`` may cost (see the module docstring); ``ValidationError``
    saying what is wrong with a body that is not an embeddings request."""
    try:
        with refuse_deep_json("the request body"):
            request = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValidationError(f"the request body is not a valid embeddings request: {exc}") from exc
    if request.dimensions is not None and not 1 <= request.dimensions <= MAX_DIMENSIONS:
        raise ValidationError(
            f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}", field="dimensions"
        )
    if request.encoding_format is not None and request.encoding_format not in ENCODINGS:
        raise ValidationError(
            f"'encoding_format' must be 'float' or 'base64', not {request.encoding_format!r}",
            field="encoding_format",
        )
    return _tokens(request.input)


def _tokens(given: Any) -> int:
    if isinstance(given, str):
        return _text(given, "input")
    if not isinstance(given, list) or not given:
        raise ValidationError(f"'input' must be {_SHAPES}, and not empty", field="input")
    if len(given) > MAX_INPUTS:
        raise ValidationError(
            f"'input' holds {len(given)} items; at most {MAX_INPUTS} per request", field="input"
        )
    if all(isinstance(item, str) for item in given):
        return sum(_text(item, f"input[{i}]") for i, item in enumerate(given))
    if all(_token(item) for item in given):
        return len(given)
    if all(isinstance(item, list) for item in given):
        for i, item in enumerate(given):
            if not item or not all(_token(t) for t in item):
                raise ValidationError(
                    f"'input[{i}]' must be a non-empty array of token ids (integers >= 0)",
                    field="input",
                )
        return sum(len(item) for item in given)
    raise ValidationError(f"'input' must be {_SHAPES}; its items are of mixed kinds", field="input")


def _text(text: str, where: str) -> int:
    if not text:
        raise ValidationError(f"'{where}' is an empty string", field="input")
    return max(1, math.ceil(len(text.encode("utf-8", "surrogatepass")) / 2))


def _token(item: Any) -> bool:
    return isinstance(item, int) and not isinstance(item, bool) and item >= 0
