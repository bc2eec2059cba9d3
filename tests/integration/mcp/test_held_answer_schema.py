"""The gateway's look-up of a tool's output schema, which shapes a held call's answer, never
fails the answer: the call is already held, and the agent must learn its approval id
(docs/decisions/0045)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub.errors import StorageError
from hub.keys import Caller
from hub.memory import InMemoryStorage
from hub.records import Role
from server.bootstrap import open_hub
from server.mcp.gateway import Gateway
from tests.integration.conftest import make_settings


async def test_a_failed_look_up_assumes_an_output_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = await open_hub(make_settings(tmp_path), storage=InMemoryStorage())
    try:
        gateway = Gateway(hub)
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
