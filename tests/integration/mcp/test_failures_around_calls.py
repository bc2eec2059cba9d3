"""Failures around a call that must not cost the agent its answer or the audit its record:
the gateway's look-up of a tool's output schema, which shapes a held call's answer, never
fails the answer (the call is already held, and the agent must learn its approval id;
docs/decisions/0045); owed ``tool.call`` records get their last attempt at shutdown even
when an earlier step of closing fails (docs/decisions/0047)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.errors import StorageError
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.records import Role
from server.bootstrap import open_hub
from server.mcp.endpoint import McpEndpoint
from tests.integration.conftest import make_settings


async def test_a_failed_look_up_assumes_an_output_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await open_hub(make_settings(tmp_path), storage=InMemoryStorage())
    try:
        gateway = McpEndpoint(hub)
        account = await hub.identity.default_account()
        created = await hub.identity.create_key(
            account.id, name="agent", role=Role.AGENT, actor="test"
        )
        caller: Caller = await hub.identity.authenticate(created.secret)

        async def down(*args: Any, **kwargs: Any) -> Any:
            raise StorageError("cannot reach the database: connection refused")

        monkeypatch.setattr(hub.policies, "active", down)
        # Never listed here: the gateway asks which servers there are, and the database fails.
        assert True is await gateway._has_output_schema(caller, "demo__add")
    finally:
        await hub.close()


async def test_owed_audit_records_get_their_last_attempt_when_an_earlier_close_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await open_hub(make_settings(tmp_path), storage=InMemoryStorage())
    drained: list[bool] = []

    async def fails() -> None:
        raise RuntimeError("the model gateway's pool did not close")

    async def drain() -> None:
        drained.append(True)

    monkeypatch.setattr(hub.model_gateway, "close", fails)
    monkeypatch.setattr(hub.tool_calls, "drain", drain)
    with pytest.raises(RuntimeError):
        await hub.close()
    assert [True] == drained
