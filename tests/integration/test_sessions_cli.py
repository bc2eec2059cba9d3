"""``preloop sessions list|show|search`` against a real server (uvicorn on 127.0.0.1, SQLite)
with s-capture's REST, seeded by :mod:`tests.integration.sessions_seed`; the CLI runs with
an admin's, an approver's and a viewer's key (a viewer sees no content and its search is
refused with the server's message)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.cli.main import cli
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.sessions_seed import ANSWER, seed

KEYS: dict[str, str] = {}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    async def on_ready(hub: Hub) -> None:
        KEYS.update(await seed(hub))

    with run_live(make_settings(tmp_path), on_ready=on_ready) as live:
        yield live


def invoke(server: LiveServer, *args: str, key: str | None = None) -> tuple[int, str, str]:
    argv = [*args, "--url", server.url, "--key", key or server.admin_key]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def preloop(server: LiveServer, *args: str, key: str | None = None) -> tuple[int, str, str]:
    """The command as a person runs it (its own process): errors on stderr, exit status 1."""
    argv = [*args, "--url", server.url, "--key", key or server.admin_key]
    done = subprocess.run(
        [sys.executable, "-m", "server.cli.main", *argv], capture_output=True, text=True
    )
    return done.returncode, done.stdout, done.stderr


def test_list_shows_sessions_from_the_ledger(server: LiveServer) -> None:
    code, out, _ = invoke(server, "sessions", "list")
    assert 0 == code, out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "FLOW", "PRINCIPAL", "MODELS"]
    assert lines[1].startswith("fx_triage1")  # the most recently active first
    assert "claude-sonnet-4-5, gpt-4o-mini" in lines[1] or "gpt-4o-mini, claude" in lines[1]
    assert "1,300/160" in lines[1]
    assert "$0.013" in lines[1]
    assert lines[2].startswith("cli-ada-1")
    code, out, _ = invoke(server, "sessions", "list", "--since", "1h", "--json")
    assert ["fx_triage1"] == [s["id"] for s in json.loads(out)["sessions"]]  # an age, as ISO
    code, out, _ = invoke(server, "sessions", "list", "--flow", "triage", "--json")
    listed = json.loads(out)["sessions"]
    assert ["fx_triage1"] == [s["id"] for s in listed]
    assert (2, "triage", "fx_triage1") == (
        listed[0]["calls"],
        listed[0]["flow"],
        listed[0]["execution_id"],
    )


def test_show_has_the_timeline_and_content_only_for_readers(server: LiveServer) -> None:
    code, out, _ = invoke(server, "sessions", "show", "fx_triage1", key=KEYS["approver"])
    assert 0 == code, out
    assert out.startswith("Session fx_triage1 (")
    assert "flow: triage" in out
    assert "TIME" in out
    assert "full" in out
    assert "metadata" in out
    assert "refund policy page" in out
    assert ANSWER in out
    code, out, _ = invoke(server, "sessions", "show", "fx_triage1", key=KEYS["viewer"])
    assert 0 == code, out
    assert "refund" not in out
    assert "Content is not shown to this key" in out
    code, _, err = preloop(server, "sessions", "show", "nope")
    assert (1, "error: no runtime session 'nope'\n") == (code, err)


def test_search_finds_snippets_and_a_viewer_is_refused(server: LiveServer) -> None:
    code, out, _ = invoke(server, "sessions", "search", "refund policy", key=KEYS["approver"])
    assert 0 == code, out
    lines = out.splitlines()
    assert lines[0].startswith("2 interactions (fulltext;") or lines[0].startswith(
        "1 interaction (fulltext;"
    )
    assert "session fx_triage1" in lines[1]
    assert "refund" in lines[2]
    assert "[[" not in out  # the markers became styling (none off a terminal)
    code, out, _ = invoke(server, "sessions", "search", "refund", "--session", "cli-ada-1",
                          "--json", key=KEYS["approver"])  # fmt: skip
    found = json.loads(out)
    assert ["cli-ada-1"] == [hit["session"] for hit in found["interactions"]]
    code, out, _ = invoke(server, "sessions", "search", "refund window", "--type", "similarity")
    assert 0 == code, out
    assert "local:hashing" in out.splitlines()[0]
    code, out, err = preloop(server, "sessions", "search", "refund", key=KEYS["viewer"])
    assert 1 == code
    assert "error: searching captured content needs the admin or approver role\n" == err
    assert "" == out


def test_bad_times_are_refused_before_asking(server: LiveServer) -> None:
    result = CliRunner().invoke(
        cli,
        ["sessions", "search", "x", "--since", "yesterday", "--url", server.url, "--key", "k"],
    )
    assert 2 == result.exit_code
    assert "--since" in result.stderr
    assert "an age like 30m, 2h, 7d" in result.stderr


def test_help_is_instant_and_imports_no_client() -> None:
    code = (
        "import sys; from server.cli.main import main;"
        "sys.argv=['preloop','sessions','search','--help'];"
        "\ntry: main()\nexcept SystemExit: pass\n"
        "assert 'httpx' not in sys.modules, 'httpx imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert 0 == done.returncode, done.stderr
    assert "--type [fulltext|similarity]" in done.stdout


def test_capture_rules_are_set_listed_and_removed_by_an_admin_only(server: LiveServer) -> None:
    code, out, _ = invoke(server, "sessions", "capture", "list")
    assert (0, "No capture rules") == (code, out[:16])  # off by default
    set_flow = ("sessions", "capture", "set", "--flow", "triage", "--mode", "full")
    code, out, _ = invoke(server, *set_flow, "--retention-days", "7")
    assert 0 == code, out
    assert out.startswith("capture full for flow triage (at most ")
    assert "kept 7 days" in out
    code, out, _ = invoke(server, "sessions", "capture", "set", "--mode", "metadata")
    assert 0 == code, out
    code, out, _ = invoke(server, "sessions", "capture", "list", "--json")
    rules = {(r["scope"], r["subject"]): r["mode"] for r in json.loads(out)["rules"]}
    assert {("flow", "triage"): "full", ("account", ""): "metadata"} == rules
    code, _, err = preloop(server, *set_flow, key=KEYS["approver"])
    assert 1 == code
    assert "admin" in err  # the server's refusal, as it says it
    code, out, _ = invoke(server, "sessions", "capture", "unset", "--flow", "triage")
    assert (0, "removed the capture rule of flow triage\n") == (code, out)
    code, out, _ = invoke(server, "sessions", "capture", "list", "--json")
    assert [("account", "")] == [(r["scope"], r["subject"]) for r in json.loads(out)["rules"]]
    code, _, err = preloop(server, "sessions", "capture", "set", "--flow", "a", "--api-key", "k",
                           "--mode", "off")  # fmt: skip
    assert 2 == code
    assert "not both" in err
