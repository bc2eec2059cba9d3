"""End to end on a live server: providers added through the API (the key by ``env:`` or
``local:`` reference), a flow execution's runtime token, the real SDKs through the real
custody, routing, budgets and ledger (SQLite), forwarding to the fake provider."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from server.model_gateway.fake_provider import REPLY, FakeProvider
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import eventually
from tests.model_gateway.conftest import PROVIDER_KEY

KEY_VAR = "GATEWAY_TEST_PROVIDER_KEY"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server(
    tmp_path: Path, fake_provider: tuple[FakeProvider, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveServer]:
    monkeypatch.setenv(KEY_VAR, PROVIDER_KEY)
    settings = make_settings(tmp_path, PRELOOP_SECRETS_ENV_ALLOW=KEY_VAR)
    with run_live(settings) as live:
        yield live


def admin(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/v1",
        headers={"authorization": f"Bearer {server.admin_key}"},
        timeout=30,
    )


def add_providers(server: LiveServer, fake_url: str, secret_ref: str) -> None:
    with admin(server) as api:
        for body in (
            {
                "name": "fake-openai",
                "kind": "openai",
                "base_url": f"{fake_url}/v1",
                "secret_ref": secret_ref,
                "models": ["gpt-fake*", "slow"],
                "aliases": {"fast": "gpt-fake"},
            },
            {
                "name": "fake-anthropic",
                "kind": "anthropic",
                "base_url": fake_url,
                "secret_ref": secret_ref,
                "models": ["claude-fake"],
            },
        ):
            response = api.post("/providers/", json=body)
            assert response.status_code == 201, response.text


def start_execution(server: LiveServer, flow: str = "nightly") -> dict[str, Any]:
    with admin(server) as api:
        response = api.post(f"/flows/{flow}/executions", json={})
    assert response.status_code == 201, response.text
    started: dict[str, Any] = response.json()
    assert started["token"].startswith("plrt_")
    return started


def tight_flow_budget(
    server: LiveServer, fake_url: str, limit: Decimal, *, input_price: str, output_price: str
) -> tuple[dict[str, Any], openai.AsyncOpenAI]:
    """The fake provider priced per million tokens, a hard day budget of ``limit`` on flow
    ``nightly``, and an SDK client holding a fresh execution's runtime token."""
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    with admin(server) as api:
        price = {"model": "gpt-fake", "input": input_price, "output": output_price}
        assert api.put("/gateway/prices", json=price).status_code in (200, 201, 204)
        budget = {"name": "tight", "scope": "flow", "scope_id": "nightly", "period": "day"}
        response = api.post("/budgets/", json={**budget, "hard_limit": str(limit)})
        assert response.status_code in (200, 201), response.text
    started = start_execution(server)
    client = openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=started["token"], max_retries=0, timeout=60
    )
    return started, client


async def gateway_events(server: LiveServer, execution_id: str, count: int) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        async with httpx.AsyncClient(
            headers={"authorization": f"Bearer {server.admin_key}"}, timeout=30
        ) as client:
            response = await client.get(
                f"{server.url}/api/v1/flows/executions/{execution_id}/gateway-events",
                params={"limit": 1000},
            )
        events: list[dict[str, Any]] = response.json()["events"]
        return events if len(events) >= count else None

    return await eventually(probe)


async def test_sdks_through_a_live_server_are_accounted_to_the_execution(
    server: LiveServer,
    fake_provider: tuple[FakeProvider, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, fake_url = fake_provider
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    started = start_execution(server)
    token = started["token"]
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=token, max_retries=0, timeout=30
    ) as client:
        answer = await client.chat.completions.create(model="fast", messages=HI)  # type: ignore[arg-type]
        stream = await client.chat.completions.create(model="gpt-fake", messages=HI, stream=True)  # type: ignore[arg-type]
        chunks = [c async for c in stream]
        models = [m.id for m in (await client.models.list()).data]
    assert answer.choices[0].message.content == REPLY
    assert all(c.choices for c in chunks)
    assert {"fast", "claude-fake"} <= set(models)  # ids and aliases; globs are not ids
    async with anthropic.AsyncAnthropic(
        base_url=f"{server.url}/anthropic", api_key=token, max_retries=0, timeout=30
    ) as client:
        message = await client.messages.create(model="claude-fake", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    assert message.content[0].type == "text"
    assert fake.seen[0].headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert fake.seen[0].body["model"] == "gpt-fake"  # the alias, routed
    assert fake.seen[2].headers["x-api-key"] == PROVIDER_KEY

    events = await gateway_events(server, started["execution"]["id"], 4)
    by_endpoint = {(e["endpoint"], e["stream"]): e for e in events}
    chat = by_endpoint[("openai.chat", False)]
    assert (chat["model"], chat["upstream_model"], chat["provider"]) == (
        "fast",
        "gpt-fake",
        "fake-openai",
    )
    assert (chat["input_tokens"], chat["output_tokens"], chat["cached_tokens"]) == (
        fake.seen[0].input_tokens,
        fake.seen[0].output_tokens,
        fake.seen[0].cached_tokens,
    )
    streamed = by_endpoint[("openai.chat", True)]
    assert streamed["output_tokens"] == fake.seen[1].output_tokens
    messages = by_endpoint[("anthropic.messages", False)]
    assert messages["input_tokens"] == fake.seen[2].input_tokens
    assert all(e["flow"] == "nightly" and e["outcome"] == "ok" for e in events)
    assert float(chat["cost"]) >= 0

    with admin(server) as api:
        shown = (
            api.get("/providers/").text
            + api.get("/flows/executions/" + started["execution"]["id"]).text
        )
    for text in (shown, caplog.text, repr(events)):
        assert PROVIDER_KEY not in text
        assert token not in text


async def test_a_flow_budget_stops_the_next_request_before_the_provider(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    fake, fake_url = fake_provider
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    with admin(server) as api:
        response = api.post(
            "/budgets/",
            json={
                "name": "nightly-daily",
                "scope": "flow",
                "scope_id": "nightly",
                "period": "day",
                "hard_limit": "0.000001",
            },
        )
        assert response.status_code in (200, 201), response.text
        price = {"model": "gpt-fake", "input": "2.5", "output": "10"}
        assert api.put("/gateway/prices", json=price).status_code in (200, 201, 204)
    token = start_execution(server)["token"]
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=token, max_retries=2, timeout=30
    ) as client:
        with pytest.raises(openai.RateLimitError) as raised:
            await client.chat.completions.create(model="gpt-fake", messages=HI)  # type: ignore[arg-type]
    assert raised.value.code == "budget_exceeded"
    assert "nightly-daily" in raised.value.message
    assert fake.seen == []  # refused before the provider, and not retried by the SDK


async def test_a_local_encrypted_secret_reaches_the_provider(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    fake, fake_url = fake_provider
    with admin(server) as api:
        response = api.put("/secrets/fake-key", json={"value": PROVIDER_KEY})
        assert response.status_code in (200, 201), response.text
    add_providers(server, fake_url, "local:fake-key")
    token = start_execution(server)["token"]
    client = anthropic.AsyncAnthropic(
        base_url=f"{server.url}/anthropic", api_key=token, max_retries=0, timeout=30
    )
    async with (
        client,
        client.messages.stream(model="claude-fake", max_tokens=5, messages=HI) as stream,  # type: ignore[arg-type]
    ):
        text = await stream.get_final_text()
    assert text == " ".join(REPLY.split(" ")[:5])
    assert fake.seen[-1].headers["x-api-key"] == PROVIDER_KEY


async def test_concurrent_requests_never_overshoot_a_hard_budget(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    """200 requests at once (the issue's budget test, through the SDK and the live server)
    against a budget that holds about 10 of them: the ones let through never cost more than
    the limit, the rest are refused before the provider."""
    import asyncio

    fake, fake_url = fake_provider
    limit = Decimal("0.01")
    # ~$0.0007 a reservation
    started, client = tight_flow_budget(
        server, fake_url, limit, input_price="10", output_price="30"
    )

    async def one() -> str:
        try:
            await client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=16)  # type: ignore[arg-type]
        except openai.RateLimitError as exc:
            return "refused" if exc.code == "budget_exceeded" else f"other: {exc.code}"
        return "ok"

    async with client:
        outcomes = await asyncio.gather(*(one() for _ in range(200)))
    assert set(outcomes) == {"ok", "refused"}
    assert len(fake.seen) == outcomes.count("ok")  # refused ones never reached the provider
    events = await gateway_events(server, started["execution"]["id"], 200)
    spent = sum(Decimal(e["cost"]) for e in events if e["outcome"] == "ok")
    assert Decimal(0) < spent <= limit
    assert sorted(e["outcome"] for e in events) == sorted(outcomes)


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        ({"max_tokens": -1}, {"bad request"}),  # refused naming the field, never "no output"
        ({"max_tokens": 16, "n": 5}, {"ok", "refused"}),  # five choices reserve five times
    ],
    ids=["negative-max-tokens", "five-choices"],
)
async def test_output_limits_cannot_stretch_a_hard_budget(
    server: LiveServer,
    fake_provider: tuple[FakeProvider, str],
    asked: dict[str, int],
    expected: set[str],
) -> None:
    """20 requests at once whose output the reservation used to undercount (``max_tokens: -1``
    reserved no output; ``n: 5`` reserved one choice of five) against a $0.20 hard limit, each
    answer costing at least $0.014: what is let through never costs more than the limit."""
    import asyncio

    fake, fake_url = fake_provider
    limit = Decimal("0.20")
    # $0.001 a token out
    started, client = tight_flow_budget(
        server, fake_url, limit, input_price="0", output_price="1000"
    )

    async def one() -> str:
        try:
            await client.chat.completions.create(model="gpt-fake", messages=HI, **asked)  # type: ignore[call-overload]
        except openai.RateLimitError as exc:
            return "refused" if exc.code == "budget_exceeded" else f"other: {exc.code}"
        except openai.BadRequestError as exc:
            named = "'max_tokens' must be an integer from 1 to 2147483647, not -1" in exc.message
            return "bad request" if named else f"other: {exc.message}"
        return "ok"

    async with client:
        outcomes = await asyncio.gather(*(one() for _ in range(20)))
    assert expected == set(outcomes)
    assert outcomes.count("ok") == len(fake.seen)  # the rest never reached the provider
    events = await gateway_events(server, started["execution"]["id"], 20)
    spent = sum(Decimal(e["cost"]) for e in events)
    assert spent <= limit
    with admin(server) as api:
        [state] = [b for b in api.get("/budgets/").json() if b["name"] == "tight"]
    assert Decimal(state["spent"]) <= limit


async def test_a_soft_limit_warns_in_a_header(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    _fake, fake_url = fake_provider
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    with admin(server) as api:
        body = {"name": "watch", "scope": "account", "period": "month", "soft_limit": "0"}
        response = api.post("/budgets/", json=body)
        assert response.status_code in (200, 201), response.text
    token = start_execution(server)["token"]
    async with anthropic.AsyncAnthropic(
        base_url=f"{server.url}/anthropic", api_key=token, max_retries=0, timeout=30
    ) as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-fake",
            max_tokens=5,
            messages=HI,  # type: ignore[arg-type]
        )
    assert "watch" in raw.headers["preloop-budget-warning"]
    assert (await raw.parse()).content[0].type == "text"


async def test_a_client_leaving_mid_stream_is_recorded_and_its_reservation_settled(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    _fake, fake_url = fake_provider
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    with admin(server) as api:
        price = {"model": "slow", "input": "1", "output": "2"}
        assert api.put("/gateway/prices", json=price).status_code in (200, 201, 204)
        body = {"name": "flow-cap", "scope": "flow", "scope_id": "nightly", "period": "total"}
        response = api.post("/budgets/", json={**body, "hard_limit": "100"})
        assert response.status_code in (200, 201), response.text
    started = start_execution(server)
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=started["token"], max_retries=0, timeout=30
    ) as client:
        stream = await client.chat.completions.create(model="slow", messages=HI, stream=True)  # type: ignore[arg-type]
        seen = 0
        async for _chunk in stream:
            seen += 1
            if seen == 4:
                break
        await stream.close()
    [event] = await gateway_events(server, started["execution"]["id"], 1)
    assert (event["outcome"], event["stream"], event["model"]) == ("disconnected", True, "slow")
    assert 4 <= event["output_tokens"] < 200

    async def settled() -> dict[str, Any] | None:
        with admin(server) as api:
            [budget] = [b for b in api.get("/budgets/").json() if b["name"] == "flow-cap"]
        return budget if Decimal(budget["reserved"]) == 0 else None  # settled, not left reserved

    budget = await eventually(settled)
    assert Decimal(budget["spent"]) == Decimal(event["cost"]) > 0


async def test_a_prompt_larger_than_the_api_body_limit_goes_through(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    """The gateway has its own limit (PRELOOP_GATEWAY_MAX_BODY_BYTES, 32 MiB), not the REST
    API's 1 MiB: prompts with documents and images are large."""
    fake, fake_url = fake_provider
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    token = start_execution(server)["token"]
    big = "word " * 400_000  # 2 MB
    async with openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=token, max_retries=0, timeout=60
    ) as client:
        answer = await client.chat.completions.create(
            model="gpt-fake",
            messages=[{"role": "user", "content": big}],
        )
    assert answer.choices[0].message.content == REPLY
    assert fake.seen[-1].input_tokens > 200_000


ASK_POLICY = """\
version: "1.0"
metadata: {name: spend asks}
approval_workflows:
  - name: spend-ask
    timeout_seconds: 120
tools: []
defaults:
  action: deny
"""


async def test_pause_and_ask_holds_a_request_until_a_person_approves(
    server: LiveServer, fake_provider: tuple[FakeProvider, str]
) -> None:
    """Past the soft limit of an ``ask`` budget the SDK's request waits (the provider is not
    called) until an approver grants the period through the approvals API; then it completes,
    and the next request goes straight through. The runtime token cannot approve itself."""
    import asyncio

    fake, fake_url = fake_provider
    add_providers(server, fake_url, f"env:{KEY_VAR}")
    with admin(server) as api:
        applied = api.post("/policies/apply", json={"source": ASK_POLICY})
        assert applied.status_code == 200, applied.text
        body = {
            "name": "ask-at-zero",
            "scope": "flow",
            "scope_id": "nightly",
            "period": "day",
            "soft_limit": "0",
            "hard_limit": "5",
            "on_soft": "ask",
            "approval_workflow": "spend-ask",
        }
        response = api.post("/budgets/", json=body)
        assert response.status_code in (200, 201), response.text
    started = start_execution(server)
    token = started["token"]
    client = openai.AsyncOpenAI(
        base_url=f"{server.url}/openai/v1", api_key=token, max_retries=0, timeout=60
    )
    seen_before = len(fake.seen)
    async with client:
        held = asyncio.create_task(
            client.chat.completions.create(model="gpt-fake", messages=HI, max_tokens=8)  # type: ignore[arg-type]
        )
        async with httpx.AsyncClient(base_url=f"{server.url}/api/v1", timeout=30) as http:
            admin_auth = {"authorization": f"Bearer {server.admin_key}"}

            async def pending() -> dict[str, Any] | None:
                listed = await http.get(
                    "/approvals/", params={"status": "pending"}, headers=admin_auth
                )
                rows = listed.json()
                rows = rows.get("requests", rows) if isinstance(rows, dict) else rows
                return next((r for r in rows if r["tool"] == "gateway.budget"), None)

            request = await eventually(pending)
            assert not held.done()
            assert len(fake.seen) == seen_before  # nothing forwarded while people decide
            assert request["args"]["budget"] == "ask-at-zero"
            own = await http.post(
                f"/approvals/{request['id']}/approve",
                json={},
                headers={"authorization": f"Bearer {token}"},
            )
            assert own.status_code in (401, 403), own.text  # the runtime token decides nothing
            approved = await http.post(
                f"/approvals/{request['id']}/approve", json={}, headers=admin_auth
            )
            assert approved.status_code == 200, approved.text
        answer = await asyncio.wait_for(held, timeout=60)
        assert answer.choices[0].message.content
        again = await client.chat.completions.with_raw_response.create(
            model="gpt-fake",
            messages=HI,  # type: ignore[arg-type]
            max_tokens=8,
        )
        assert "ask-at-zero" in again.headers["preloop-budget-warning"]  # granted: no new ask
    assert len(fake.seen) == seen_before + 2
