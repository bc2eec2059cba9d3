"""Preloop's answer about a held call, fit for a tool with an output schema.

When a call waits for an asynchronous approval, the firewall answers at once with
``{approval_id, status, ...}`` as ``structuredContent`` and in ``_meta["ai.preloop/decision"]``
(server/mcp/_answers.py). A tool with an ``outputSchema`` cannot carry that: the schema
describes the tool's own result, and the MCP SDK client validates every successful result
against it (and rejects one without structured content). So for such a tool the edge turns
the answer into ``isError`` without ``structuredContent``; the approval id stays in the text
and in ``_meta`` (docs/decisions/0045).
"""

from __future__ import annotations

from typing import Any


def unstructured(result: dict[str, Any]) -> dict[str, Any]:
    """A held call's answer fit for a tool with an output schema: the schema describes the
    tool's result, which Preloop's ``{approval_id, status}`` would violate, and the MCP SDK
    client rejects a successful result without structured content. So the answer is
    ``isError`` (the call has not run), with no ``structuredContent``; the approval id stays
    in the text and in ``_meta`` (docs/decisions/0045)."""
    return {k: v for k, v in result.items() if k != "structuredContent"} | {"isError": True}
