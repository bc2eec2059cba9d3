"""Upstream MCP servers and their tools as the REST API answers them."""

from __future__ import annotations

from datetime import datetime

import msgspec


class ServerHealth(msgspec.Struct, frozen=True, kw_only=True):
    state: str  # ready | connecting | failed | stopped
    last_error: str | None
    restarts: int


class ServerView(msgspec.Struct, frozen=True, kw_only=True):
    """A stored server. Header and env values may hold secrets: only their keys are shown.
    ``health`` is None when the replica that answers is not connected to it."""

    name: str
    transport: str
    source: str  # policy | api
    command: str | None
    args: list[str]
    url: str | None
    env_keys: list[str]
    header_keys: list[str]
    health: ServerHealth | None
    updated_at: datetime


class ToolView(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    description: str
    blocked: bool  # its definition changed since it was pinned: calls are refused
    definition_hash: str
    pinned_hash: str
    updated_at: datetime
    diff: str  # blocked: the unified diff from the pinned definition to the served one; else ""


class AcceptedTool(msgspec.Struct, frozen=True, kw_only=True):
    tool: ToolView
    diff: str
