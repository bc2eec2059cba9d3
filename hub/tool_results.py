"""A tool's result as its server sent it: JSON bytes, passed on unchanged.

The core never looks inside a result beyond whether it reports an error (for the audit's
status); the edge that answers the agent splices the bytes into its own message, so what the
upstream sent reaches the agent losslessly. Results made by Preloop itself (refusals, held
calls) are built at the edge from the call's outcome, not here.
"""

from __future__ import annotations

from typing import Any

import msgspec


class _ErrorFlag(msgspec.Struct):
    isError: bool = False  # the field's name on the wire


_flag = msgspec.json.Decoder(_ErrorFlag)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class ToolResult(msgspec.Struct, frozen=True, kw_only=True):
    """One tool call's result: ``json`` is the result object's JSON as the tool's server sent
    it; ``is_error`` whether it reports a failed tool run."""

    json: bytes
    is_error: bool = False

    @classmethod
    def of(cls, result: dict[str, Any]) -> ToolResult:
        return cls(json=_encode(result), is_error=result.get("isError") is True)

    @classmethod
    def of_json(cls, raw: bytes) -> ToolResult:
        """From the raw JSON of a result object (read for its error flag only)."""
        return cls(json=raw, is_error=_flag.decode(raw).isError)

    def as_dict(self) -> dict[str, Any]:
        return _decode(self.json)
