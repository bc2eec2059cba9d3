"""Resources, resource templates and prompts through the MCP firewall, and list changes relayed
to the agent: the SDK's own client, in both protocol eras, talks to Preloop's ``/mcp`` on a real
uvicorn; behind it, the stdio test server (and the npm reference server when Node is here)."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import Subscription
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourcesListChanged, ServerEvent, ToolsListChanged

from server.mcp import UpstreamConfig
from server.mcp._content import qualify, unqualify
from server.mcp._uritemplate import matches, template_pattern
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import (
    AGENT_TIMEOUT,
    REPO,
    direct_client,
    direct_raw,
    stdio_config,
)
from tests.servers.upstream_server import PNG_BASE64, STATIC_BLOB_URI, STATIC_TEXT_URI

MODES = ["auto", "legacy"]
WAIT = 30.0  # a bound on waiting for a notification; never a timing assertion

SERVER = """\
  - name: %(name)s
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
    env: {TEST_SERVER_FEATURES: "%(features)s"}
"""
POLICY = """\
version: "1.0"
metadata: {name: resources test}
mcp_servers:
%(servers)s
tools:
  - {name: add_tool, server: demo, action: allow}
  - {name: add_resource, server: demo, action: allow}
  - {name: added_tool, server: demo, action: allow}
defaults:
  action: deny
  unknown_tools: deny
"""


def policy_settings(tmp_path: Path, servers: str) -> Any:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY % {"servers": servers})
    return make_settings(tmp_path, PRELOOP_POLICY_FILE=str(policy))


def server_entry(name: str, features: str = "all") -> str:
    return SERVER % {"name": name, "python": sys.executable, "features": features}


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """Preloop in front of one stdio test server, ``demo``."""
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    with run_live(policy_settings(tmp_path, server_entry("demo"))) as live:
        yield live


@pytest.fixture
def several(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """Preloop in front of ``demo`` and ``twin`` (the same test server: the same resource
    URIs) and ``bare`` (tools only: no resources, templates or prompts)."""
    monkeypatch.chdir(REPO)
    servers = server_entry("demo") + server_entry("twin") + server_entry("bare", "tools")
    with run_live(policy_settings(tmp_path, servers)) as live:
        yield live


@dataclass
class Agent:
    """The SDK client connected to Preloop, with what the server pushed to it."""

    client: Client
    notifications: anyio.abc.ObjectReceiveStream[str]
    get_stream_open: anyio.Event = field(default_factory=anyio.Event)  # handshake era

    async def notified(self, method: str) -> None:
        with anyio.fail_after(WAIT):
            async for received in self.notifications:
                if received == method:
                    return


@asynccontextmanager
async def agent(live: LiveServer, mode: str, key: str | None = None) -> AsyncIterator[Agent]:
    """The MCP SDK client on Preloop's /mcp, recording the notifications it receives."""
    send, receive = anyio.create_memory_object_stream[str](100)
    opened = anyio.Event()

    async def on_message(message: Any) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str) and method.startswith("notifications/"):
            send.send_nowait(method)

    async def on_response(response: httpx2.Response) -> None:
        # The handshake era's standalone stream: notifications sent before it opens are lost.
        if response.request.method == "GET" and response.status_code == 200:
            opened.set()

    headers = {"Authorization": f"Bearer {key or live.admin_key}"}
    async with httpx2.AsyncClient(
        headers=headers, timeout=AGENT_TIMEOUT, event_hooks={"response": [on_response]}
    ) as http:
        transport = streamable_http_client(f"{live.url}/mcp", http_client=http)
        async with (
            send,
            receive,
            Client(transport, mode=mode, cache=None, message_handler=on_message) as client,  # type: ignore[arg-type]
        ):
            yield Agent(client=client, notifications=receive, get_stream_open=opened)


def read(uri: str) -> types.ReadResourceRequest:
    return types.ReadResourceRequest(params=types.ReadResourceRequestParams(uri=uri))


def get_prompt(name: str, arguments: dict[str, str]) -> types.GetPromptRequest:
    return types.GetPromptRequest(
        params=types.GetPromptRequestParams(name=name, arguments=arguments)
    )


LIST_RESOURCES = types.ListResourcesRequest()
LIST_TEMPLATES = types.ListResourceTemplatesRequest()
LIST_PROMPTS = types.ListPromptsRequest()


async def audit_events(live: LiveServer, kind: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.get(
            "/api/v1/audit/",
            params={"kind": kind, "order": "oldest"},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    response.raise_for_status()
    return list(response.json())


MODERN_ONLY = ("resultType", "ttlMs", "cacheScope")  # result fields of 2026-07-28 only


def without_envelope(result: dict[str, Any], mode: str) -> dict[str, Any]:
    """A direct (2026-07-28) result as a handshake-era agent gets it: without the fields
    only the 2026-07-28 era has."""
    if mode == "legacy":
        return {key: value for key, value in result.items() if key not in MODERN_ONLY}
    return result


# -- listing, reading, getting ---------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_resources_templates_and_prompts_match_a_direct_call(
    demo: LiveServer, mode: str
) -> None:
    async with direct_client(stdio_config("demo")) as direct:
        expected_resources = (await direct_raw(direct, LIST_RESOURCES))["resources"]
        expected_templates = (await direct_raw(direct, LIST_TEMPLATES))["resourceTemplates"]
        expected_prompts = (await direct_raw(direct, LIST_PROMPTS))["prompts"]
        expected_reads = {
            uri: await direct_raw(direct, read(uri))
            for uri in (STATIC_TEXT_URI, STATIC_BLOB_URI, "test://items/7")
        }
        expected_prompt = await direct_raw(direct, get_prompt("greet", {"name": "Ada"}))
    async with agent(demo, mode) as preloop:
        resources = (await direct_raw(preloop.client, LIST_RESOURCES))["resources"]
        templates = (await direct_raw(preloop.client, LIST_TEMPLATES))["resourceTemplates"]
        prompts = (await direct_raw(preloop.client, LIST_PROMPTS))["prompts"]
        reads = {uri: await direct_raw(preloop.client, read(uri)) for uri in expected_reads}
        prompt = await direct_raw(preloop.client, get_prompt("demo__greet", {"name": "Ada"}))
        typed = await preloop.client.read_resource(STATIC_BLOB_URI)

    assert expected_resources == resources  # one upstream: URIs unchanged
    assert expected_templates == templates
    assert [{**p, "name": f"demo__{p['name']}"} for p in expected_prompts] == prompts
    for uri, expected in expected_reads.items():
        assert without_envelope(expected, mode) == reads[uri], uri
    assert without_envelope(expected_prompt, mode) == prompt
    assert "Please greet Ada." == prompt["messages"][0]["content"]["text"]
    assert isinstance(typed.contents[0], types.BlobResourceContents)
    assert PNG_BASE64 == typed.contents[0].blob


@pytest.mark.parametrize("mode", MODES)
async def test_reads_and_gets_are_audited_with_arguments_redacted(
    demo: LiveServer, mode: str
) -> None:
    secret = "sk-" + "a1" * 12
    async with agent(demo, mode) as preloop:
        await preloop.client.read_resource(STATIC_TEXT_URI)
        await preloop.client.get_prompt("demo__greet", {"name": secret})
        with pytest.raises(MCPError) as unknown_uri:
            await preloop.client.read_resource("test://nowhere")
        with pytest.raises(MCPError) as unknown_prompt:
            await preloop.client.get_prompt("greet", {})

    reads = await audit_events(demo, "resource.read")
    gets = await audit_events(demo, "prompt.get")
    assert [(e["data"]["server"], e["data"]["uri"], e["data"]["status"]) for e in reads] == [
        ("demo", STATIC_TEXT_URI, "ok"),
        ("demo", "test://nowhere", "upstream_error"),
    ]
    assert "no resource test://nowhere" in reads[1]["data"]["error"]
    assert "no resource test://nowhere" in unknown_uri.value.message
    assert types.INVALID_PARAMS == unknown_uri.value.code  # the upstream's own code, relayed
    assert [(e["data"]["server"], e["data"]["prompt"], e["data"]["status"]) for e in gets] == [
        ("demo", "greet", "ok"),
        (None, "greet", "refused"),
    ]
    assert {"name": "[REDACTED]"} == gets[0]["data"]["args"]
    assert "<server>__<prompt>" in unknown_prompt.value.message
    for event in reads + gets:
        assert isinstance(event["data"]["duration_ms"], int | float)
        # The handshake era's MCP session id (2026-07-28 has no sessions).
        assert bool(event["data"]["session"]) is (mode == "legacy")
        assert event["actor"]  # the key that asked


async def test_unauthenticated_requests_are_refused(demo: LiveServer) -> None:
    accept = {"Accept": "application/json, text/event-stream"}
    requests = [
        {"jsonrpc": "2.0", "id": 1, "method": "resources/list", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "resources/read", "params": {"uri": STATIC_TEXT_URI}},
        {"jsonrpc": "2.0", "id": 3, "method": "prompts/get", "params": {"name": "demo__greet"}},
    ]
    async with httpx.AsyncClient(base_url=demo.url, timeout=30) as http:
        missing = [await http.post("/mcp", json=body, headers=accept) for body in requests]
        wrong = [
            await http.post(
                "/mcp", json=body, headers={**accept, "Authorization": "Bearer pl_nope"}
            )
            for body in requests
        ]
    for response in missing + wrong:
        assert 401 == response.status_code
        assert "AuthenticationError" == response.json()["error"]["type"]
    assert [] == await audit_events(demo, "resource.read")
    assert [] == await audit_events(demo, "prompt.get")


async def test_several_upstreams_are_merged_and_ambiguous_uris_qualified(
    several: LiveServer,
) -> None:
    async with agent(several, "auto") as preloop:
        # Only demo lists this one, once added (no listing before: routes are learnt on demand).
        await preloop.client.call_tool("demo__add_resource", {"name": "solo"})
        added = await direct_raw(preloop.client, read("test://added/solo"))
        resources = (await direct_raw(preloop.client, LIST_RESOURCES))["resources"]
        templates = (await direct_raw(preloop.client, LIST_TEMPLATES))["resourceTemplates"]
        prompts = (await direct_raw(preloop.client, LIST_PROMPTS))["prompts"]
        with pytest.raises(MCPError) as ambiguous:
            await preloop.client.read_resource(STATIC_TEXT_URI)
        qualified = await direct_raw(preloop.client, read(f"preloop://twin/{STATIC_TEXT_URI}"))
        with pytest.raises(MCPError) as bare:
            await preloop.client.read_resource(f"preloop://bare/{STATIC_TEXT_URI}")
        with pytest.raises(MCPError) as nobody:
            await preloop.client.get_prompt("bare__greet", {"name": "x"})

    assert "added solo" == added["contents"][0]["text"]
    assert [
        f"preloop://demo/{STATIC_TEXT_URI}",
        f"preloop://demo/{STATIC_BLOB_URI}",
        "test://added/solo",
        f"preloop://twin/{STATIC_TEXT_URI}",
        f"preloop://twin/{STATIC_BLOB_URI}",
    ] == [resource["uri"] for resource in resources]  # server by server, in listing order
    assert ["preloop://demo/test://items/{item_id}", "preloop://twin/test://items/{item_id}"] == [
        template["uriTemplate"] for template in templates
    ]
    assert ["demo__greet", "twin__greet"] == [prompt["name"] for prompt in prompts]
    assert "several MCP servers" in ambiguous.value.message
    assert f"preloop://twin/{STATIC_TEXT_URI}" in ambiguous.value.message
    assert [{"uri": STATIC_TEXT_URI, "mimeType": "text/plain", "text": "hello, world"}] == (
        qualified["contents"]
    )
    assert "'bare' serves no resources" in bare.value.message
    assert "'bare' serves no prompts" in nobody.value.message
    reads = await audit_events(several, "resource.read")
    assert [(e["data"]["server"], e["data"]["uri"], e["data"]["status"]) for e in reads] == [
        ("demo", "test://added/solo", "ok"),
        (None, STATIC_TEXT_URI, "refused"),
        ("twin", STATIC_TEXT_URI, "ok"),
        ("bare", STATIC_TEXT_URI, "upstream_error"),
    ]


@pytest.mark.parametrize(
    ("template", "uri", "expected"),
    [
        ("test://items/{id}", "test://items/7", True),
        ("test://items/{id}", "test://items/7/parts", False),
        ("test://items/{id}", "test://other/7", False),
        ("file:///{+path}", "file:///src/a.py", True),
        ("search{?q,lang}", "search?q=x&lang=en", True),
        ("search{?q,lang}", "search", True),
        ("repo{/segments*}", "repo/a/b", True),
        ("a.b/{x}", "aXb/1", False),  # literal text is literal, dots included
    ],
)
def test_uri_templates_match_what_they_could_expand_to(
    template: str, uri: str, expected: bool
) -> None:
    assert expected is matches(template_pattern(template), uri)


def test_qualified_uris_name_their_server() -> None:
    qualified = qualify("team/a", "file:///x?y=1")

    assert "preloop://team%2Fa/file:///x?y=1" == qualified
    assert ("team/a", "file:///x?y=1") == unqualify(qualified)
    assert unqualify("file:///x") is None
    assert unqualify("preloop://only-a-server") is None


# -- list changes ----------------------------------------------------------------------------


def list_changed_declared(capabilities: types.ServerCapabilities) -> tuple[bool, ...]:
    """Whether tools, resources and prompts declare ``listChanged``, and resources
    ``subscribe`` (which Preloop does not relay)."""
    return (
        bool(capabilities.tools and capabilities.tools.list_changed),
        bool(capabilities.resources and capabilities.resources.list_changed),
        bool(capabilities.prompts and capabilities.prompts.list_changed),
        bool(capabilities.resources and capabilities.resources.subscribe),
    )


async def next_event(subscription: Subscription, kind: type[ServerEvent]) -> None:
    with anyio.fail_after(WAIT):
        async for event in subscription:
            if isinstance(event, kind):
                return
    raise AssertionError(f"the subscription ended before a {kind.__name__} event")


async def test_list_changes_reach_a_listening_agent(demo: LiveServer) -> None:
    """2026-07-28: the agent hears of changes on its subscriptions/listen stream."""
    # The policy covers the added tool: listing shows only tools the policy may let run.
    tool, resource = "added_tool", f"res_{uuid4().hex[:8]}"
    async with agent(demo, "auto") as preloop:
        before = await preloop.client.list_tools()
        await direct_raw(preloop.client, LIST_RESOURCES)  # routes from a listing, then stale
        async with preloop.client.listen(
            tools_list_changed=True, resources_list_changed=True, prompts_list_changed=True
        ) as subscription:
            await preloop.client.call_tool("demo__add_tool", {"name": tool})
            await next_event(subscription, ToolsListChanged)
            after = await preloop.client.list_tools()
            await preloop.client.call_tool("demo__add_resource", {"name": resource})
            await next_event(subscription, ResourcesListChanged)
            added = await preloop.client.read_resource(f"test://added/{resource}")
        capabilities = preloop.client.server_capabilities

    assert f"demo__{tool}" not in [t.name for t in before.tools]
    assert f"demo__{tool}" in [t.name for t in after.tools]
    assert isinstance(added.contents[0], types.TextResourceContents)
    assert f"added {resource}" == added.contents[0].text
    assert (True, True, True, False) == list_changed_declared(capabilities)


async def test_list_changes_reach_a_handshake_era_agent(demo: LiveServer) -> None:
    """The handshake era: the agent hears of changes on its session's standalone stream."""
    # The policy covers the added tool: listing shows only tools the policy may let run.
    tool, resource = "added_tool", f"res_{uuid4().hex[:8]}"
    async with agent(demo, "legacy") as preloop, agent(demo, "legacy") as bystander:
        with anyio.fail_after(WAIT):
            await preloop.get_stream_open.wait()
            await bystander.get_stream_open.wait()
        await preloop.client.call_tool("demo__add_tool", {"name": tool})
        await preloop.notified("notifications/tools/list_changed")
        await bystander.notified("notifications/tools/list_changed")  # every session
        after = await preloop.client.list_tools()
        await preloop.client.call_tool("demo__add_resource", {"name": resource})
        await preloop.notified("notifications/resources/list_changed")
        added = await preloop.client.read_resource(f"test://added/{resource}")
        capabilities = preloop.client.server_capabilities

    assert f"demo__{tool}" in [t.name for t in after.tools]
    assert isinstance(added.contents[0], types.TextResourceContents)
    assert f"added {resource}" == added.contents[0].text
    assert (True, True, True, False) == list_changed_declared(capabilities)


async def apply_policy(live: LiveServer, source: str) -> None:
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        applied = await http.post(
            "/api/v1/policies/apply",
            json={"source": source},
            headers={"Authorization": f"Bearer {live.admin_key}"},
        )
    assert 200 == applied.status_code, applied.text


def hiding_add_tool(live: LiveServer) -> str:
    """The live policy, with ``add_tool`` denied: it is no longer listed."""
    assert live.settings.policy.file
    source = Path(live.settings.policy.file).read_text()
    allowed = "{name: add_tool, server: demo, action: allow}"
    assert allowed in source
    return source.replace(allowed, "{name: add_tool, server: demo, action: deny}")


async def test_a_policy_apply_tells_a_listening_agent_its_tools_changed(demo: LiveServer) -> None:
    """2026-07-28: listing follows the policy, so an apply is a tools list change."""
    async with agent(demo, "auto") as preloop:
        before = await preloop.client.list_tools()
        async with preloop.client.listen(tools_list_changed=True) as subscription:
            await apply_policy(demo, hiding_add_tool(demo))
            await next_event(subscription, ToolsListChanged)
            after = await preloop.client.list_tools()

    assert "demo__add_tool" in [t.name for t in before.tools]
    assert "demo__add_tool" not in [t.name for t in after.tools]


async def test_a_policy_apply_tells_a_handshake_era_agent_its_tools_changed(
    demo: LiveServer,
) -> None:
    """The handshake era: every session of the account hears of it on its standalone stream."""
    async with agent(demo, "legacy") as preloop, agent(demo, "legacy") as bystander:
        with anyio.fail_after(WAIT):
            await preloop.get_stream_open.wait()
            await bystander.get_stream_open.wait()
        before = await preloop.client.list_tools()
        await apply_policy(demo, hiding_add_tool(demo))
        await preloop.notified("notifications/tools/list_changed")
        await bystander.notified("notifications/tools/list_changed")
        after = await preloop.client.list_tools()

    assert "demo__add_tool" in [t.name for t in before.tools]
    assert "demo__add_tool" not in [t.name for t in after.tools]


# -- the npm reference server ----------------------------------------------------------------


_CLOCK_TIME = re.compile(r"\d{1,2}:\d{2}:\d{2}\s?(?:[AP]M)?")


def without_clock_times(result: Any) -> Any:
    """The reference server stamps dynamic resources with the time of day."""
    return json.loads(_CLOCK_TIME.sub("<time>", json.dumps(result)))


async def every_page(client: Client, request: type[Any], key: str) -> list[dict[str, Any]]:
    """A listing's items, walking all pages, as the server sent them."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await direct_raw(client, request(params=params))
        items += page[key]
        cursor = page.get("nextCursor")
        if not cursor:
            return items


@pytest.mark.parametrize("mode", MODES)
async def test_the_npm_reference_server_through_preloop(
    everything_server: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.chdir(REPO)
    entry = (
        f"  - {{name: everything, transport: stdio, "
        f'command: "{everything_server}", args: [stdio]}}\n'
    )
    policy = (POLICY % {"servers": entry}).replace("server: demo", "server: everything")
    (tmp_path / "policy.yaml").write_text(policy)
    settings = make_settings(tmp_path, PRELOOP_POLICY_FILE=str(tmp_path / "policy.yaml"))
    config = UpstreamConfig(
        name="everything", transport="stdio", command=str(everything_server), args=("stdio",)
    )
    async with direct_client(config) as direct:
        expected_resources = await every_page(direct, types.ListResourcesRequest, "resources")
        expected_templates = await every_page(
            direct, types.ListResourceTemplatesRequest, "resourceTemplates"
        )
        expected_prompts = await every_page(direct, types.ListPromptsRequest, "prompts")
        uris = [resource["uri"] for resource in expected_resources[:3]]
        expected_reads = [await direct_raw(direct, read(uri)) for uri in uris]
    with run_live(settings) as live:
        async with agent(live, mode) as preloop:
            resources = (await direct_raw(preloop.client, LIST_RESOURCES))["resources"]
            templates = (await direct_raw(preloop.client, LIST_TEMPLATES))["resourceTemplates"]
            prompts = (await direct_raw(preloop.client, LIST_PROMPTS))["prompts"]
            reads = [await direct_raw(preloop.client, read(uri)) for uri in uris]

    assert expected_resources == resources  # every page, in one answer
    assert expected_templates == templates
    assert [{**p, "name": f"everything__{p['name']}"} for p in expected_prompts] == prompts
    # The contents; the envelope is the agent's era's (the reference server's is older).
    assert without_clock_times([r["contents"] for r in expected_reads]) == without_clock_times(
        [r["contents"] for r in reads]
    )
    assert expected_resources
    assert expected_prompts
