"""``preloop bench gateway``: the same model requests directly to the fake provider and through
Preloop, in one run.

Three processes: the fake provider (``python -m server.model_gateway.fake_provider``), Preloop
(``python -m server serve``, SQLite in a temporary data directory: the usage ledger is
persisted) and this one, the client (aiohttp, one pooled session per path). Preloop's provider
is added through the REST API with its key as an ``env:`` secret reference, and requests carry
a runtime token of a flow execution, as a managed agent's would.

Measured per mode (non-streaming: the whole answer; streaming: time to the first byte) and
concurrency (C workers, each making its share of the requests one after another): p50 and p99
latency of both paths and their difference (Preloop's overhead), requests per second, and
Preloop's CPU time per request (``/proc/<pid>/stat`` delta / requests). Also Preloop's cold
start (process start → ``/healthz`` 200) and idle RSS, and the ledger rows at the end (every
proxied request must be there).

Capture (decision 0109) is measured in the same run: a third path, ``captured``, sends the same
requests with a second flow execution's token whose flow has a ``full`` capture rule, right after
the ``proxied`` (capture off) path; their p50 difference is capture's cost on the request. At the
end, the latest calls of the captured execution are read back to check each was captured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import msgspec

START_TIMEOUT = 60.0
PROVIDER_KEY_ENV = "BENCH_FAKE_PROVIDER_KEY"
MODEL = "gpt-fake"
BODY = msgspec.json.encode(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
)
STREAM_BODY = msgspec.json.encode({**msgspec.json.decode(BODY), "stream": True})

# The targets on 2 cores.
TARGET_P50_MS = 1.0
TARGET_P99_MS = 5.0
TARGET_RPS = 500.0
TARGET_COLD_START_S = 2.0
TARGET_RSS_MB = 150.0
TARGET_CAPTURE_MS = 0.5  # capture "never slows a request measurably" (issue 16)
CAPTURE_FLOW = "bench-capture"
CAPTURE_CHECKED = 500  # the most calls of the captured execution read back


class Row(msgspec.Struct):
    mode: str  # "non-streaming" | "streaming"
    concurrency: int
    path: str  # "direct" | "proxied" | "captured" (proxied with capture full)
    requests: int
    p50_ms: float  # whole answer; for streaming, time to first byte
    p99_ms: float
    requests_per_s: float
    preloop_cpu_ms_per_request: float | None = None


class Target(msgspec.Struct):
    name: str
    value: float
    limit: float
    unit: str
    met: bool


class GatewayBench(msgspec.Struct):
    rows: list[Row]
    cold_start_s: float  # a new data directory: migrations included
    restart_s: float  # the same data directory again
    idle_rss_mb: float
    ledger_rows: int
    proxied_requests: int
    targets: list[Target]
    captured_checked: int = 0  # latest calls of the captured execution read back
    captured_found: int = 0  # of those, captured (with request and response text)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: the sockets are held together, so two calls in a row
    cannot hand out the same port (the fake provider and Preloop would then share it)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _spawn(module_args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """``python -m <module_args>``, quiet (the benchmark prints its own report)."""
    return subprocess.Popen(
        [sys.executable, "-m", *module_args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _wait_http(
    url: str,
    process: subprocess.Popen[bytes],
    what: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Until ``url`` answers; with ``headers`` (the admin key) until it accepts them, so that
    another process that took the port first (a parallel test's server) is not mistaken for
    ours: ours then exits (the address is in use) and this raises."""
    deadline = time.monotonic() + START_TIMEOUT
    async with aiohttp.ClientSession() as session:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with {process.returncode}")
            try:
                async with session.get(url, headers=headers) as response:
                    if response.status < (400 if headers else 500):
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not answer {url} in {START_TIMEOUT:.0f} s")
            await asyncio.sleep(0.01)


def _auth(admin_key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {admin_key}"}


async def _start_preloop(
    env: dict[str, str], admin_key: str, port: int
) -> tuple[subprocess.Popen[bytes], int]:
    """``preloop serve`` on ``port``, ready and ours (it accepts our admin key); on another
    free port when a process took that one first (at most three tries)."""
    for attempt in range(3):
        process = _spawn(["server", "serve", "--host", "127.0.0.1", "--port", str(port)], env)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/providers"
            await _wait_http(url, process, "preloop serve", _auth(admin_key))
        except RuntimeError:
            _stop(process)
            if attempt == 2:
                raise
            (port,) = _free_ports(1)
        else:
            return process, port
    raise AssertionError("unreachable")  # pragma: no cover


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _load(
    url: str, key: str, *, stream: bool, concurrency: int, requests: int
) -> tuple[list[float], float]:
    """Latencies (ms; time to first byte when streaming) and the elapsed seconds."""
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    body = STREAM_BODY if stream else BODY
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}: {await response.text()}")
                if stream:
                    await response.content.readany()
                    latencies.append((time.perf_counter() - started) * 1000)
                    await response.read()
                else:
                    await response.read()
                    latencies.append((time.perf_counter() - started) * 1000)

        async def worker(count: int) -> None:
            for _ in range(count):
                await one()

        await asyncio.gather(*(worker(10) for _ in range(concurrency)))  # warm the pools
        latencies.clear()
        share = max(1, requests // concurrency)
        started = time.perf_counter()
        await asyncio.gather(*(worker(share) for _ in range(concurrency)))
        return latencies, time.perf_counter() - started


async def _configure(url: str, admin_key: str, fake_url: str) -> tuple[str, str, str]:
    """The provider (key by ``env:`` reference), a flow execution's runtime token, and another
    execution's (id and token) of a flow whose capture is ``full``."""
    headers = {"authorization": f"Bearer {admin_key}"}
    provider = {
        "name": "bench-fake",
        "kind": "openai",
        "base_url": f"{fake_url}/v1",
        "secret_ref": f"env:{PROVIDER_KEY_ENV}",
        "models": [MODEL],
    }
    async with aiohttp.ClientSession(base_url=url, headers=headers) as session:
        async with session.post("/api/v1/providers/", json=provider) as response:
            if response.status >= 300:
                raise RuntimeError(f"adding the provider failed: {await response.text()}")
        async with session.post("/api/v1/flows/bench/executions", json={}) as response:
            if response.status >= 300:
                raise RuntimeError(f"starting a flow execution failed: {await response.text()}")
            token: str = (await response.json())["token"]
        rule = {"scope": "flow", "subject": CAPTURE_FLOW, "mode": "full"}
        async with session.put("/api/v1/gateway/capture", json=rule) as response:
            if response.status >= 300:
                raise RuntimeError(f"turning capture on failed: {await response.text()}")
        async with session.post(f"/api/v1/flows/{CAPTURE_FLOW}/executions", json={}) as response:
            if response.status >= 300:
                raise RuntimeError(f"starting a flow execution failed: {await response.text()}")
            started = await response.json()
    return token, started["execution"]["id"], started["token"]


async def _captured(url: str, admin_key: str, execution_id: str) -> tuple[int, int]:
    """Of the captured execution's latest calls: how many were read, how many captured."""
    headers = {"authorization": f"Bearer {admin_key}"}
    path = f"/api/v1/runtime/sessions/{execution_id}"
    async with (
        aiohttp.ClientSession(base_url=url, headers=headers) as session,
        session.get(path, params={"limit": CAPTURE_CHECKED}) as response,
    ):
        if response.status != 200:
            return 0, 0
        calls = (await response.json())["interactions"]
    found = [c for c in calls if c["captured"] == "full" and c["request"] and c["response"]]
    return len(calls), len(found)


async def _ledger_rows(url: str, admin_key: str) -> int:
    headers = {"authorization": f"Bearer {admin_key}"}
    async with (
        aiohttp.ClientSession(base_url=url, headers=headers) as session,
        session.get("/api/v1/gateway/usage/summary", params={"flow": "bench"}) as response,
    ):
        if response.status != 200:
            return -1
        summary = await response.json()
    return int(summary["total"]["requests"])


async def _run(
    requests: int, concurrencies: tuple[int, ...], progress: Callable[[str], None]
) -> GatewayBench:
    provider_key = "sk-bench-" + secrets.token_hex(16)
    admin_key = "pl_bench_" + secrets.token_hex(24)
    fake_port, preloop_port = _free_ports(2)
    fake_url = f"http://127.0.0.1:{fake_port}"
    url = f"http://127.0.0.1:{preloop_port}"
    with tempfile.TemporaryDirectory(prefix="preloop-bench-gateway-") as data:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PRELOOP_")},
            "PRELOOP_DATA_DIR": data,
            "PRELOOP_ADMIN_KEY": admin_key,
            "PRELOOP_LOG_LEVEL": "WARNING",
            "PRELOOP_ENV_FILE": str(Path(data) / "none.env"),
            PROVIDER_KEY_ENV: provider_key,
            "PRELOOP_SECRETS_ENV_ALLOW": PROVIDER_KEY_ENV,  # the provider's env: reference
        }
        fake = _spawn(
            ["server.model_gateway.fake_provider", "--port", str(fake_port), "--key", provider_key],
            env,
        )
        preloop: subprocess.Popen[bytes] | None = None
        try:
            await _wait_http(f"{fake_url}/v1/models", fake, "the fake provider")
            progress("starting preloop serve (SQLite ledger)...")
            started = time.perf_counter()
            preloop, preloop_port = await _start_preloop(env, admin_key, preloop_port)
            url = f"http://127.0.0.1:{preloop_port}"
            cold_start = time.perf_counter() - started
            token, capture_execution, capture_token = await _configure(url, admin_key, fake_url)
            await asyncio.sleep(1.0)
            idle_rss = _rss_mb(preloop.pid)
            rows: list[Row] = []
            proxied = 0
            for mode, stream in (("non-streaming", False), ("streaming", True)):
                for concurrency in concurrencies:
                    for path, target, key in (
                        ("direct", f"{fake_url}/v1/chat/completions", provider_key),
                        ("proxied", f"{url}/openai/v1/chat/completions", token),
                        ("captured", f"{url}/openai/v1/chat/completions", capture_token),
                    ):
                        progress(f"{mode}, concurrency {concurrency}, {path}...")
                        cpu = _cpu_seconds(preloop.pid)
                        latencies, elapsed = await _load(
                            target, key, stream=stream, concurrency=concurrency, requests=requests
                        )
                        used = _cpu_seconds(preloop.pid) - cpu
                        if path == "proxied":
                            proxied += len(latencies) + 10 * concurrency
                        rows.append(
                            Row(
                                mode=mode,
                                concurrency=concurrency,
                                path=path,
                                requests=len(latencies),
                                p50_ms=_percentile(latencies, 0.5),
                                p99_ms=_percentile(latencies, 0.99),
                                requests_per_s=len(latencies) / elapsed,
                                preloop_cpu_ms_per_request=used * 1000 / len(latencies)
                                if path != "direct"
                                else None,
                            )
                        )
            await asyncio.sleep(2.0)  # the ledger's writer flushes in the background
            ledger_rows = await _ledger_rows(url, admin_key)
            checked, found = await _captured(url, admin_key, capture_execution)
            _stop(preloop)
            progress("restarting preloop serve on the same data directory...")
            started = time.perf_counter()
            preloop = _spawn(
                ["server", "serve", "--host", "127.0.0.1", "--port", str(preloop_port)], env
            )
            await _wait_http(f"{url}/api/v1/providers", preloop, "preloop serve", _auth(admin_key))
            restart = time.perf_counter() - started
        finally:
            if preloop is not None:
                _stop(preloop)
            _stop(fake)
    return GatewayBench(
        rows=rows,
        cold_start_s=cold_start,
        restart_s=restart,
        idle_rss_mb=idle_rss,
        ledger_rows=ledger_rows,
        proxied_requests=proxied,
        targets=targets(rows, cold_start, restart, idle_rss),
        captured_checked=checked,
        captured_found=found,
    )


def overhead(
    rows: list[Row], mode: str, concurrency: int, path: str = "proxied", base: str = "direct"
) -> tuple[float, float] | None:
    """``path``'s p50 and p99 minus ``base``'s (Preloop's overhead over the provider; with
    ``path="captured", base="proxied"``, capture's cost on the request)."""
    by_path = {r.path: r for r in rows if r.mode == mode and r.concurrency == concurrency}
    if base not in by_path or path not in by_path:
        return None
    measured, baseline = by_path[path], by_path[base]
    return measured.p50_ms - baseline.p50_ms, measured.p99_ms - baseline.p99_ms


def targets(rows: list[Row], cold_start: float, restart: float, rss: float) -> list[Target]:
    found: list[Target] = []
    single = overhead(rows, "non-streaming", 1)
    if single is not None:
        found.append(
            Target("overhead p50, c=1", single[0], TARGET_P50_MS, "ms", single[0] <= TARGET_P50_MS)
        )
        found.append(
            Target("overhead p99, c=1", single[1], TARGET_P99_MS, "ms", single[1] <= TARGET_P99_MS)
        )
    capture = overhead(rows, "non-streaming", 1, "captured", "proxied")
    if capture is not None:
        found.append(
            Target(
                "capture full vs off p50, c=1",
                capture[0],
                TARGET_CAPTURE_MS,
                "ms",
                capture[0] <= TARGET_CAPTURE_MS,
            )
        )
    ten = [
        r for r in rows if r.mode == "non-streaming" and r.concurrency == 10 and r.path == "proxied"
    ]
    if ten:
        rps = ten[0].requests_per_s
        found.append(
            Target("req/s, c=10, ledger persisted", rps, TARGET_RPS, "req/s", rps >= TARGET_RPS)
        )
    for name, seconds in (("cold start, new data dir", cold_start), ("restart", restart)):
        found.append(
            Target(name, seconds, TARGET_COLD_START_S, "s", seconds <= TARGET_COLD_START_S)
        )
    found.append(Target("idle RSS", rss, TARGET_RSS_MB, "MB", rss <= TARGET_RSS_MB))
    return found


def run_gateway_bench(
    *, requests: int, concurrencies: tuple[int, ...], progress: Callable[[str], None]
) -> GatewayBench:
    return asyncio.run(_run(requests, concurrencies, progress))
