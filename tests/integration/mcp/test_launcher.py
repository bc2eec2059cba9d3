"""The test MCP server's launcher (tests/servers/launch.py) behaves like the server it starts:
the pool sees one process whose pid the server reports, signals reach the copy, and the copy
does not outlive its launcher, even when the launcher is killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from tests.integration.mcp.support import LAUNCH_MODULE, REPO

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def _launch() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", LAUNCH_MODULE, "stdio"],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _ask(process: subprocess.Popen[str], message: dict[str, object]) -> dict[str, object]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(json.dumps(message) + "\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())


def _stats(process: subprocess.Popen[str]) -> dict[str, int]:
    """The server's ``stats``: ``pid`` (what it reports as its pid) and ``process`` (its own)."""
    assert _ask(process, INITIALIZE)["id"] == 1
    assert process.stdin is not None
    process.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    process.stdin.write("\n")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "stats", "arguments": {}}}  # fmt: skip
    answer = _ask(process, call)
    result = answer["result"]
    assert isinstance(result, dict)
    return {name: int(result["structuredContent"][name]) for name in ("pid", "process")}


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_the_server_reports_the_launchers_pid_and_ends_on_stdin_eof() -> None:
    process = _launch()
    try:
        assert _stats(process)["pid"] == process.pid  # the pid its starter knows
        assert process.stdin is not None
        process.stdin.close()
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def test_sigterm_reaches_the_server_and_sigkill_of_the_launcher_ends_it() -> None:
    for signum in (signal.SIGTERM, signal.SIGKILL):
        process = _launch()
        copy: int | None = None
        try:
            copy = _stats(process)["process"]  # the launcher itself without the fork server
            process.send_signal(signum)
            process.wait(timeout=10)
            assert _gone(copy), f"the server {copy} outlived its launcher ({signum!r})"
            assert process.stdout is not None
            assert process.stdout.read() == ""  # every writer of the pipe is gone: EOF
        finally:
            process.kill()
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
            if process.stdin is not None:
                process.stdin.close()
            if copy is not None and copy > 1:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(copy, signal.SIGKILL)  # left only if the test failed
