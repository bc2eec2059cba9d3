"""A policy sent over HTTP cannot stall the server: an alias bomb or an oversized document is
a 413 envelope whatever the route (a viewer may validate and diff), and parsing runs in a
worker thread, so other requests are answered while a document is being read."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.api_client import error_from_answer
from hub.errors import PolicyTooLargeError
from hub.policy import CelProgram, CelPythonEngine
from hub.policy_versions import PolicyService
from hub.records import Role
from server.hub_services import Hub
from tests.integration.conftest import Api, make_settings, run_live
from tests.unit.policy.policy_helpers import billion_laughs

LEGAL = """version: "1.0"
metadata:
  name: legal
tools:
""" + "".join(
    f"""  - name: tool_{i}
    conditions:
      - expression: "args.text == 'secret {i}'"
        action: deny
"""
    for i in range(100)
)


@pytest.mark.parametrize("route", ["validate", "diff"])
async def test_an_alias_bomb_from_a_viewer_is_a_413_naming_the_problem(
    api: Api, route: str
) -> None:
    viewer = await api.key(Role.VIEWER)

    response = await api.client.post(
        f"/api/v1/policies/{route}",
        json={"source": billion_laughs(), "filename": "bomb.yaml"},
        headers=api.auth(viewer),
    )

    assert 413 == response.status_code
    error = response.json()["error"]
    assert ("PolicyTooLargeError", "Policy too large") == (error["type"], error["title"])
    [problem] = error["problems"]
    assert "bomb.yaml" == problem["file"]
    assert "YAML aliases would add more than 10,000 values" in problem["message"]


async def test_an_alias_bomb_sent_to_apply_is_a_413(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/policies/apply", json={"source": billion_laughs()}, headers=api.auth()
    )

    assert 413 == response.status_code
    assert "PolicyTooLargeError" == response.json()["error"]["type"]


async def test_a_policy_over_the_size_limit_is_a_413_naming_the_limit(api: Api) -> None:
    api.hub.policies = PolicyService(
        api.hub.storage, api.clock, api.hub.auditor, max_source_bytes=4096
    )
    viewer = await api.key(Role.VIEWER)

    response = await api.client.post(
        "/api/v1/policies/validate",
        json={"source": LEGAL, "filename": "big.yaml"},
        headers=api.auth(viewer),
    )

    assert 413 == response.status_code
    [problem] = response.json()["error"]["problems"]
    size = len(LEGAL.encode())
    expected = f"the policy is {size:,} bytes; the limit is 4,096 bytes (4 KiB)"
    assert (expected, "big.yaml") == (problem["message"], problem["file"])


class _GatedEngine:
    """cel-python, except that compiling waits until the test opens the gate (and says on
    which thread it ran): while it waits, the policy is provably still being loaded."""

    name = "gated"

    def __init__(self) -> None:
        self._inner = CelPythonEngine()
        self.started = threading.Event()
        self.gate = threading.Event()
        self.threads: set[int] = set()

    def compile(self, source: str) -> CelProgram:
        self.threads.add(threading.get_ident())
        self.started.set()
        self.gate.wait(timeout=10)  # only a safety net: the test opens the gate
        return self._inner.compile(source)

    def prepare(self, activation: Mapping[str, Any]) -> Mapping[str, Any]:
        return self._inner.prepare(activation)


async def test_other_requests_are_answered_while_a_policy_is_being_loaded(
    tmp_path: Path,
) -> None:
    # A real server (uvicorn on 127.0.0.1, its own thread and loop): Litestar's test client
    # runs each request to completion before the next, so it cannot show two at once.
    engine = _GatedEngine()
    loop_threads: list[int] = []

    async def gated(hub: Hub) -> None:
        loop_threads.append(threading.get_ident())  # on_ready runs on the server's loop
        hub.policies = PolicyService(hub.storage, hub.clock, hub.auditor, engine=engine)

    with run_live(make_settings(tmp_path), on_ready=gated) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
            validating = asyncio.create_task(
                client.post(
                    "/api/v1/policies/validate",
                    json={"source": LEGAL},
                    headers={"Authorization": f"Bearer {live.admin_key}"},
                )
            )
            assert await asyncio.to_thread(engine.started.wait, 30)
            health = await client.get("/healthz")
            still_loading = not validating.done()
            engine.gate.set()
            response = await validating

    assert 200 == health.status_code
    assert still_loading  # the policy's compilation was held at the gate meanwhile
    assert 1 == len(loop_threads)
    assert loop_threads[0] not in engine.threads
    assert {"valid": True, "name": "legal", "tools": 100, "problems": []} == response.json()


async def test_the_cli_client_reads_the_413_back_into_its_problems(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/policies/validate",
        json={"source": billion_laughs(), "filename": "bomb.yaml"},
        headers=api.auth(),
    )

    error = error_from_answer(response.status_code, response.content)

    assert isinstance(error, PolicyTooLargeError)
    [problem] = error.problems
    assert "bomb.yaml" == problem.file
    assert "alias bomb" in problem.message
