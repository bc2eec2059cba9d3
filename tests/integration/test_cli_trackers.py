"""``preloop trackers`` and ``preloop sync`` (and the ``preloop-sync`` script) against a real
server on 127.0.0.1 whose tracker is the scripted one of the unit tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hub.errors import NotFoundError, ValidationError
from hub.trackers.records import RemoteIssue
from server.cli.main import cli
from server.cli.trackers import sync
from server.hub_services import Hub
from tests.integration.conftest import LiveServer, make_settings, run_live
from tests.integration.test_api_trackers import scripted_hub

T0 = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    async def plug(hub: Hub) -> None:
        scripted = scripted_hub(hub)
        for n in range(1, 4):
            scripted.put(
                "spacecode/astrobot",
                RemoteIssue(
                    external_id=f"e{n}",
                    number=str(n),
                    title=f"Login fails {n}",
                    state="open",
                    created_at=T0,
                    updated_at=T0 + timedelta(minutes=n),
                ),
            )

    with run_live(make_settings(tmp_path), on_ready=plug) as live:
        yield live


def invoke(server: LiveServer, *args: str, group: object = cli) -> tuple[int, str, str]:
    argv = [*args, "--url", server.url, "--key", server.admin_key]
    result = CliRunner().invoke(group, argv, catch_exceptions=False)  # type: ignore[arg-type]
    return result.exit_code, result.stdout, result.stderr


def test_connect_test_sync_and_remove_a_tracker(server: LiveServer) -> None:
    code, out, err = invoke(
        server,
        "trackers",
        "add",
        "gh",
        "--kind",
        "github",
        "--base-url",
        "https://api.github.com",
        "--token",
        "env:GITHUB_TOKEN",
        "--project",
        "spacecode/astrobot",
    )
    assert (0, "") == (code, err)
    assert "Added tracker gh." in out
    assert "shown once" in out
    assert "/api/v1/webhooks/trk_" in out
    code, out, _ = invoke(server, "trackers", "list", "--json")
    assert [("gh", "env:GITHUB_TOKEN")] == [(t["name"], t["token_ref"]) for t in json.loads(out)]
    code, out, _ = invoke(server, "trackers", "test", "gh")
    assert (0, "ok   connected to github project spacecode/astrobot (gh)\n") == (code, out)
    code, out, _ = invoke(server, "sync", "scan", "all")
    assert 0 == code
    assert out.startswith("gh: sync of 1 project(s): 3 issues, 0 comments written")
    code, out, _ = invoke(server, "status", group=sync)  # as preloop-sync runs it
    assert 0 == code
    assert "spacecode/astrobot" in out
    code, out, _ = invoke(server, "scan", "gh", "--full", "--json", group=sync)
    assert [(3, True)] == [(r["issues"], r["full"]) for r in json.loads(out)]
    with pytest.raises(ValidationError, match="projects: invalid gitlab project"):
        invoke(
            server,
            "trackers",
            "add",
            "lab",
            "--kind",
            "gitlab",
            "--base-url",
            "https://gitlab.com",
            "--token",
            "env:GL",
            "--project",
            "onlyone",
        )
    code, out, _ = invoke(server, "trackers", "remove", "gh", "--yes")
    assert (0, "Removed tracker gh.\n") == (code, out)
    with pytest.raises(NotFoundError):
        invoke(server, "sync", "scan", "gh")


def test_preloop_sync_is_a_console_script_with_instant_help() -> None:
    script = Path(sys.executable).with_name("preloop-sync")
    done = subprocess.run(
        [str(script), "scan", "--help"], capture_output=True, text=True, check=False
    )
    assert 0 == done.returncode, done.stderr
    assert "Usage: preloop-sync scan [OPTIONS] all|TRACKER" in done.stdout
    assert "--full" in done.stdout


async def test_the_client_hears_each_page_of_a_sync_before_its_report(server: LiveServer) -> None:
    from hub.api_client import ApiClient
    from hub.wire import SyncEvent

    events: list[SyncEvent] = []
    async with ApiClient(server.url, server.admin_key) as client:
        await client.add_tracker(
            {
                "name": "gh",
                "kind": "github",
                "base_url": "https://api.github.com",
                "token_ref": "env:GITHUB_TOKEN",
                "projects": ["spacecode/astrobot"],
            }
        )
        report = await client.sync_tracker("gh", full=True, progress=events.append)
    # the scripted tracker answers pages of two
    assert [("spacecode/astrobot", 2), ("spacecode/astrobot", 3)] == [
        (e.project, e.issues) for e in events
    ]
    assert (3, True) == (report.issues, report.full)


def test_progress_rewrites_one_line_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    from hub.wire import SyncEvent
    from server.cli.trackers import _Progress

    progress = _Progress()
    progress.tty = True
    progress(SyncEvent(type="progress", tracker="gh", project="o/r", issues=100))
    progress(SyncEvent(type="progress", tracker="gh", project="o/r", issues=2000))
    progress.done()
    err = capsys.readouterr().err
    first, second = "  gh o/r: 100 issues…", "  gh o/r: 2000 issues…"
    assert f"\r{first}\r{second}\r{' ' * len(second)}\r" == err
