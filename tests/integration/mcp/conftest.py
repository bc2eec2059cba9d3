"""Fixtures for the MCP upstream tests: the in-repo test server over HTTP and SSE, a pool
that records list-changed notifications, and the npm reference server (when Node is here)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import pytest_asyncio

from hub.settings import Settings
from server.mcp import UpstreamConfig, UpstreamPool
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.mcp.support import (
    REPO,
    ChangeRecorder,
    ServerProcess,
    http_config,
    stdio_config,
)

EVERYTHING_PACKAGE = "@modelcontextprotocol/server-everything"
EVERYTHING_VERSION = "2026.8.31"  # `npm view @modelcontextprotocol/server-everything version`
NPM_CACHE = REPO / ".cache" / "npm-servers"
NPM_INSTALL_TIMEOUT = 240


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def http_server() -> Iterator[ServerProcess]:
    """The test server on streamable HTTP, for tests that do not kill it."""
    server = ServerProcess("http")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sse_server() -> Iterator[ServerProcess]:
    """The test server on legacy HTTP+SSE, for tests that do not kill it."""
    server = ServerProcess("sse")
    yield server
    server.stop()


TRANSPORTS = ["stdio", "stdio-legacy", "http", "http-legacy", "sse"]


def _stdio_upstream(kind: str) -> UpstreamConfig:
    protocol = "legacy" if kind.endswith("-legacy") else "auto"
    return stdio_config(f"test-{kind}", protocol=protocol, env={"TEST_SERVER_IDENTITY": "stdio"})


@pytest.fixture(params=TRANSPORTS)
def upstream(request: pytest.FixtureRequest) -> UpstreamConfig:
    """The test server over each transport, in each protocol era the SDK speaks."""
    kind: str = request.param
    protocol = "legacy" if kind.endswith("-legacy") else "auto"
    name = f"test-{kind}"
    if kind.startswith("stdio"):
        return _stdio_upstream(kind)
    if kind.startswith("http"):
        server: ServerProcess = request.getfixturevalue("http_server")
        return http_config(
            name, server.url, protocol=protocol, headers={"X-Test-Header": "from-config"}
        )
    server = request.getfixturevalue("sse_server")
    return http_config(name, server.url, transport="sse", headers={"X-Test-Header": "from-config"})


def quick_pool(changes: ChangeRecorder | None = None) -> UpstreamPool:
    """A pool that retries quickly."""
    return UpstreamPool(
        on_list_changed=changes, backoff_initial=0.05, backoff_max=0.5, connect_timeout=20
    )


@pytest.fixture
def changes() -> ChangeRecorder:
    return ChangeRecorder()


@pytest_asyncio.fixture(loop_scope="module")
async def pool(changes: ChangeRecorder) -> AsyncIterator[UpstreamPool]:
    """A pool of the test's own, closed after it."""
    async with quick_pool(changes) as pool:
        yield pool


@pytest.fixture(scope="module")
def shared_changes() -> ChangeRecorder:
    return ChangeRecorder()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_pool(shared_changes: ChangeRecorder) -> AsyncIterator[UpstreamPool]:
    """One pool for the tests that leave their upstream healthy: it keeps one session per
    upstream for the whole module (so those tests also show the session being reused)."""
    async with quick_pool(shared_changes) as pool:
        yield pool


async def _in(pool: UpstreamPool, config: UpstreamConfig) -> UpstreamConfig:
    if config.name not in pool.names():
        await pool.add(config)
    return config


@pytest_asyncio.fixture(loop_scope="module")
async def connected(shared_pool: UpstreamPool, upstream: UpstreamConfig) -> UpstreamConfig:
    """``upstream``, in the shared pool."""
    return await _in(shared_pool, upstream)


@pytest_asyncio.fixture(loop_scope="module")
async def shared_stdio(shared_pool: UpstreamPool) -> UpstreamConfig:
    """The stdio test server in the shared pool."""
    return await _in(shared_pool, _stdio_upstream("stdio"))


def _installed_version(package_dir: Path) -> str | None:
    manifest = package_dir / "package.json"
    if not manifest.is_file():
        return None
    version = json.loads(manifest.read_text()).get("version")
    return version if isinstance(version, str) else None


@pytest.fixture(scope="session")
def everything_server() -> Path:
    """The npm reference server, installed once into .cache/npm-servers (pinned version)."""

    def unavailable(why: str) -> NoReturn:
        if _in_ci():
            pytest.fail(f"{why}; CI must run the npm reference-server tests")
        pytest.skip(why)

    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("node/npm are not on PATH: cannot run the npm reference MCP server")
    package_dir = NPM_CACHE / "node_modules" / "@modelcontextprotocol" / "server-everything"
    binary = NPM_CACHE / "node_modules" / ".bin" / "mcp-server-everything"
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    # One install at a time: each pytest-xdist worker runs this session fixture, and two npm
    # installs into one prefix trip over each other's files (ENOTEMPTY).
    with (NPM_CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version(package_dir) != EVERYTHING_VERSION or not binary.exists():
            _npm_install(unavailable, binary)
    return binary


def _npm_install(unavailable: Callable[[str], NoReturn], binary: Path) -> None:
    """The pinned reference server into .cache/npm-servers (called under the install lock)."""
    try:
        completed = subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(NPM_CACHE),
                "--no-audit",
                "--no-fund",
                "--no-save",
                f"{EVERYTHING_PACKAGE}@{EVERYTHING_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=NPM_INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        unavailable(f"npm install {EVERYTHING_PACKAGE} took over {NPM_INSTALL_TIMEOUT}s")
    if completed.returncode != 0 or not binary.exists():
        unavailable(f"npm install {EVERYTHING_PACKAGE} failed: {completed.stderr[-500:]}")


GATEWAY_POLICY = """\
version: "1.0"
metadata: {name: gateway test}
mcp_servers:
  - name: demo
    transport: stdio
    command: "%(python)s"
    args: ["-m", "tests.servers.launch", "stdio"]
    env: {TEST_SERVER_TOOLSET: "${DEMO_TOOLSET}"}
approval_workflows:
  - name: sync-approval
    timeout_seconds: 60
    async_approval: false
  - name: async-approval
    timeout_seconds: 60
    async_approval: true
tools:
  - {name: echo, server: demo, action: allow}
  - {name: fail, server: demo, action: allow}
  - {name: image, server: demo, action: allow}
  - {name: embedded_resource, server: demo, action: allow}
  - {name: add, server: demo, action: require_approval, approval_workflow: async-approval}
  - {name: progress, server: demo, action: allow}
  - name: add_tool
    server: demo
    conditions:
      - expression: "true"
        action: deny
        message: "Adding tools is not allowed here."
  - {name: whoami, server: demo, action: allow, justification: required}
  - {name: getenv, server: demo, action: require_approval, approval_workflow: sync-approval}
defaults:
  action: deny
  unknown_tools: deny
"""


@pytest.fixture
def gateway_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose policy declares the stdio test server ``demo``; its toolset comes from
    ``${DEMO_TOOLSET}``, which ``PRELOOP_MCP_ENV_ALLOW`` lets it read."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(GATEWAY_POLICY % {"python": sys.executable})
    monkeypatch.chdir(REPO)  # the upstream runs `-m tests.servers...` from the repo root
    monkeypatch.setenv("DEMO_TOOLSET", "v1")
    return make_settings(
        tmp_path, PRELOOP_POLICY_FILE=str(policy), PRELOOP_MCP_ENV_ALLOW="DEMO_TOOLSET"
    )


@pytest.fixture
def gateway_server(gateway_settings: Settings) -> Iterator[LiveServer]:
    """The real app on uvicorn, serving the MCP firewall in front of ``demo``."""
    with run_live(gateway_settings) as live:
        yield live
