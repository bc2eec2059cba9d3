"""``preloop tui``'s wiring: where it connects (flags, environment, the profile ``preloop
login`` saves), that it refuses to start without a key, and that the CLI stays light."""

from __future__ import annotations

import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from hub.api_client import ApiClient, error_from_answer, resolve_target
from hub.errors import PreloopError
from hub.profiles import save_profile
from server.cli.main import cli
from tests.integration.conftest import LiveServer
from tests.integration.mcp.support import REPO
from tui.app import error_text
from tui.feed import Backoff, ws_url


def test_the_profile_preloop_login_saves_is_read() -> None:
    path = save_profile("default", "http://10.0.0.5:8000", "pl_saved")
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    target = resolve_target(None, None)
    assert ("http://10.0.0.5:8000", "pl_saved") == (target.url, target.api_key)
    assert "pl_saved" not in repr(target)


def test_flags_win_over_the_environment_and_the_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    save_profile("work", "http://saved:1", "pl_saved")
    monkeypatch.setenv("PRELOOP_URL", "http://env:2/")
    monkeypatch.setenv("PRELOOP_API_KEY", "pl_env")
    from_env = resolve_target(None, None, "work")
    assert ("http://env:2", "pl_env") == (from_env.url, from_env.api_key)
    flagged = resolve_target("http://flag:3", "pl_flag", "work")
    assert ("http://flag:3", "pl_flag") == (flagged.url, flagged.api_key)


def test_without_a_key_preloop_tui_says_what_to_do() -> None:
    result = CliRunner().invoke(cli, ["tui"], standalone_mode=False)
    assert result.exception is not None
    assert "preloop login URL --key KEY" in str(result.exception)


def test_the_cli_lists_tui_without_importing_textual() -> None:
    code = (
        "import sys; from server.cli.main import cli, COMMANDS; import server.cli.tui;"
        "assert 'tui' in COMMANDS; assert 'textual' not in sys.modules, 'textual imported'"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert 0 == done.returncode, done.stderr


def test_the_websocket_url_follows_the_scheme() -> None:
    assert "ws://127.0.0.1:8000/api/v1/ws/unified" == ws_url("http://127.0.0.1:8000/")
    assert "wss://preloop.example/api/v1/ws/unified" == ws_url("https://preloop.example")


def test_backoff_doubles_to_its_cap_and_resets() -> None:
    backoff = Backoff(first=0.5, cap=3.0)
    assert [0.5, 1.0, 2.0, 3.0, 3.0] == [backoff.next_delay() for _ in range(5)]
    backoff.reset()
    assert 0.5 == backoff.next_delay()


def test_server_errors_read_the_envelope_and_never_carry_a_traceback() -> None:
    envelope = b'{"error": {"type": "PermissionDeniedError", "message": "viewers may not decide"}}'
    title, message = error_text(error_from_answer(403, envelope))
    assert "Not allowed" == title
    assert "viewers may not decide (HTTP 403, PermissionDeniedError)" == message
    assert ("Server error", "HTTP 502: Bad gateway") == error_text(
        error_from_answer(502, b"Bad gateway", "Bad Gateway")
    )


async def test_a_policy_over_the_size_limit_is_a_problem_under_the_editor_not_a_modal() -> None:
    """The server refuses to read it (413 PolicyTooLargeError); the Policies screen, which
    validates as you type, lists it with the other problems instead of a "Server error"
    modal at every pause."""
    problem = {"message": "the policy is 600,000 bytes; the limit is 524,288 bytes (512 KiB)"}
    envelope = {
        "error": {
            "type": "PolicyTooLargeError",
            "title": "Policy too large",
            "message": "1 problem in policy",
            "problems": [{**problem, "file": "<policy>"}],
        }
    }

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(413, json=envelope)

    client = ApiClient("http://preloop.test", "pl_x", transport=httpx.MockTransport(answer))
    checked = await client.validate_policy("x" * 10)
    await client.aclose()
    assert not checked.valid
    assert [problem["message"]] == [p.message for p in checked.problems]
    error = error_from_answer(413, httpx.Response(413, json=envelope).content)
    assert "Too large" == error_text(error)[0]
    assert "(HTTP 413, PolicyTooLargeError)" in error_text(error)[1]


async def test_an_unreachable_server_is_a_preloop_error() -> None:
    client = ApiClient("http://127.0.0.1:9", "pl_x")  # the discard port: nothing listens
    with pytest.raises(PreloopError, match=re.escape("cannot reach the Preloop server at")):
        await client.pending()
    await client.aclose()


def test_preloop_tui_runs_in_a_real_terminal_and_quits_on_q(tui_server: LiveServer) -> None:
    """The command itself, in a pseudo-terminal: it draws, connects, and ``q`` ends it
    cleanly (exit 0, no traceback)."""
    fd, terminal = pty.openpty()
    preloop = str(Path(sys.executable).with_name("preloop"))
    process = subprocess.Popen(
        [preloop, "tui", "--url", tui_server.url, "--key", tui_server.admin_key],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color"},
        start_new_session=True,
    )
    os.close(terminal)
    try:
        wanted = (b"connected", b"(admin)", b"Approvals")  # drawn in any order
        screen = _read_until(fd, lambda seen: all(part in seen for part in wanted))
        assert all(part in screen for part in wanted), screen[-2000:]
        os.write(fd, b"q")
        screen += _read_until(fd, lambda seen: False)  # until the terminal closes
        assert 0 == process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(fd)
    assert b"Traceback" not in screen


def _read_until(fd: int, done: Callable[[bytes], bool], within: float = 30.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not done(seen):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen
