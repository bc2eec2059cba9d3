"""The Sessions screens with Pilot on the fixed scene (:mod:`tests.tui.sessions_scene`): what
the rows say, ``s`` asks the server for active or ended sessions, the list follows the server
(polling while shown, not while hidden) and keeps the highlighted session, Enter opens the
timeline with content for an approver and metadata only for a viewer, ``/`` searches with
the bar's fields and highlights the matches, a viewer's search shows the server's refusal,
and the help lists every key."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable, Static

from hub.wire import InteractionView
from hub.wire.sessions import CONTENT_WITHHELD, content_note, snippet_parts
from tests.tui import scenes, sessions_scene
from tests.tui.conftest import plain, until
from tests.tui.test_sessions_snapshots import searched, shown, timeline, typed_in
from tui.app import PreloopApp
from tui.audit_log import FilterError
from tui.screens.help import HelpScreen
from tui.screens.modals import ErrorModal
from tui.screens.session_views import InteractionSearchScreen, SessionTimelineScreen
from tui.screens.sessions import SessionsScreen
from tui.sessions import InteractionFilter, ago, snippet_text


def _rows(table: DataTable[Any]) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def _sessions_asked(server: sessions_scene.Server) -> list[dict[str, str]]:
    return [params for path, params in server.asked if path == "/api/v1/runtime/sessions"]


async def test_the_rows_and_the_status_switch() -> None:
    server = sessions_scene.Server()
    app = sessions_scene.sessions_app(server)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await shown(pilot)
        table = screen.query_one("#sessions-table", DataTable)
        assert _rows(table) == [
            ["● active", "fx_7c1e", "nightly-triage", "flow:nightly-tria…",
             "claude-sonnet-4-5, …", "14", "$0.2374", "45s ago"],
            ["○ ended", "cli-ada-0931", "-", "ada@example.com", "gpt-4o", "3", "$0.0134",
             "41m ago"],
            ["○ ended", "fx_6b02", "release-notes", "flow:release-notes", "gpt-4o-mini", "2",
             "$0.0004", "1d ago"],
        ]  # fmt: skip
        assert _sessions_asked(server)[-1] == {"status": "all", "limit": "200"}
        summary = plain(screen.query_one("#session-summary", Static))
        assert "claude-sonnet-4-5, gpt-4o-mini" in summary  # the pane has them whole
        assert "(execution fx_7c1e)" in summary
        await pilot.press("s")
        await until(pilot, lambda: _sessions_asked(server)[-1]["status"] == "active" or None)
        await until(pilot, lambda: table.row_count == 1 or None)
        assert str(table.border_title) == "Sessions · active"
        await pilot.press("s")
        await until(pilot, lambda: _sessions_asked(server)[-1]["status"] == "ended" or None)
        await until(pilot, lambda: table.row_count == 2 or None)


async def test_narrow_terminals_show_flow_or_principal_in_one_column() -> None:
    app = sessions_scene.sessions_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await shown(pilot)
        table = screen.query_one("#sessions-table", DataTable)
        assert [str(c.label) for c in table.columns.values()] == [
            "State", "Session", "Flow / principal", "Calls", "Spend", "Last"
        ]  # fmt: skip
        assert [row[2] for row in _rows(table)] == [
            "nightly-triage",
            "ada@example.com",
            "release-notes",
        ]
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 78


async def test_the_list_follows_the_server_while_shown_and_keeps_the_selection() -> None:
    server = sessions_scene.Server()
    app = sessions_scene.sessions_app(server)
    sessions = app.main_screens["sessions"]
    assert isinstance(sessions, SessionsScreen)
    sessions.refresh_seconds = 0.05
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        table = sessions.query_one("#sessions-table", DataTable)
        await pilot.press("down")  # cli-ada-0931
        newcomer = sessions_scene.session("fx_9d9d", flow="on-call", status="active",
                                          last_at=sessions_scene.at(-0.1))  # fmt: skip
        server.sessions = [newcomer, *server.sessions]
        await until(pilot, lambda: table.row_count == 4 or None)
        assert _rows(table)[0][1] == "fx_9d9d"
        assert sessions.selected() is not None
        assert sessions.selected().id == "cli-ada-0931"  # type: ignore[union-attr]
        # Hidden, it asks nothing; shown again, it asks at once.
        await pilot.press("1")
        await until(pilot, lambda: app.screen is not sessions or None)
        await pilot.pause(0.2)
        asked = len(_sessions_asked(server))
        await pilot.pause(0.3)
        assert asked == len(_sessions_asked(server))
        await pilot.press("7")
        await until(pilot, lambda: len(_sessions_asked(server)) > asked or None)


async def test_enter_opens_the_timeline_with_content_for_an_approver() -> None:
    app = sessions_scene.sessions_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await timeline(pilot)
        table = screen.query_one("#timeline-table", DataTable)
        assert [row[0] for row in _rows(table)] == ["08:48:00", "08:54:00", "08:59:15"]
        assert _rows(table)[2][3:] == ["502", "error", "1,200/0", "$0.0000", "30,001 ms",
                                       "metadata"]  # fmt: skip
        body = plain(screen.query_one("#timeline-body", Static), width=200)
        assert '"content": "Summarise issue #412: the refund policy page' in body
        assert "still says 14 days" in body
        assert '  "model": "claude-sonnet-4-5",' in body  # JSON indented to read
        await pilot.press("down", "down")
        body = plain(screen.query_one("#timeline-body", Static), width=200)
        assert "Captured as metadata only" in body
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, SessionsScreen) or None)


async def test_a_viewer_sees_the_timeline_without_content() -> None:
    server = sessions_scene.Server("viewer")
    app = sessions_scene.sessions_app(server)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await timeline(pilot)
        body = plain(screen.query_one("#timeline-body", Static), width=200)
        assert CONTENT_WITHHELD in body
        assert "refund" not in body
        assert screen.query_one("#timeline-table", DataTable).row_count == 3


async def test_search_sends_the_bar_s_fields_and_highlights_the_matches() -> None:
    server = sessions_scene.Server()
    app = sessions_scene.sessions_app(server)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await searched(pilot)
        path, params = server.asked[-1]
        assert path == "/api/v1/gateway/interactions"
        assert params == {"q": "refund policy", "search_type": "fulltext", "limit": "50",
                          "since": "2026-11-17T09:00:00+00:00"}  # fmt: skip
        table = screen.query_one("#search-table", DataTable)
        assert [row[2] for row in _rows(table)] == ["fx_7c1e", "cli-ada-0931"]
        snippet = table.get_row_at(0)[4]
        assert isinstance(snippet, Text)
        marked = [snippet.plain[s.start : s.end] for s in snippet.spans if s.style]
        assert marked == ["refund", "policy"]
        assert "2 matches · fulltext · sqlite-fts5" == str(table.border_subtitle)
        # Search again in place, with a type and a model.
        await typed_in(pilot, "#search-bar", "annual model:gpt-4o type:similarity")
        await pilot.press("enter")
        await until(pilot, lambda: server.asked[-1][1].get("q") == "annual" or None)
        assert server.asked[-1][1] == {"q": "annual", "search_type": "similarity",
                                       "model": "gpt-4o", "limit": "50"}  # fmt: skip
        await until(pilot, lambda: "similarity" in str(table.border_subtitle) or None)
        assert "local:hashing-v1@512" in str(table.border_subtitle)
        # Enter on a match opens its session at that call.
        table.focus()
        await pilot.press("down", "enter")
        opened = await until(
            pilot,
            lambda: app.screen if isinstance(app.screen, SessionTimelineScreen) else None,
        )
        assert opened.session_id == "cli-ada-0931"
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, InteractionSearchScreen) or None)


async def test_a_viewer_s_search_shows_the_server_s_refusal() -> None:
    app = sessions_scene.sessions_app(sessions_scene.Server("viewer"))
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        await typed_in(pilot, "#sessions-search", "refund")
        await pilot.press("enter")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        assert "Not allowed" == modal.error_title
        assert "Only admins and approvers may search captured content." in modal.message
        assert "(HTTP 403, PermissionDeniedError)" in modal.message


async def test_a_search_bar_it_cannot_read_is_refused_before_asking() -> None:
    server = sessions_scene.Server()
    app = sessions_scene.sessions_app(server)
    async with app.run_test(size=(120, 40)) as pilot:
        await shown(pilot)
        await typed_in(pilot, "#sessions-search", "refund modle:gpt-4o")
        await pilot.press("enter")
        modal = await until(
            pilot, lambda: app.screen if isinstance(app.screen, ErrorModal) else None
        )
        assert "'modle:gpt-4o'" in modal.message
        assert not [path for path, _ in server.asked if path.endswith("/interactions")]


async def test_the_help_lists_every_key_of_the_screen() -> None:
    app = sessions_scene.sessions_app()
    declared = [*SessionsScreen.BINDINGS, *PreloopApp.BINDINGS]
    async with app.run_test(size=(80, 24)) as pilot:
        await shown(pilot)
        await pilot.press("question_mark")
        help_screen = await until(
            pilot, lambda: app.screen if isinstance(app.screen, HelpScreen) else None
        )
        table = help_screen.query_one(DataTable)
        descriptions = {str(table.get_row_at(i)[1]) for i in range(table.row_count)}
        for binding in declared:
            assert isinstance(binding, Binding)
            assert (binding.tooltip or binding.description) in descriptions
        assert "Sessions" in descriptions  # the 7 key


def test_the_search_bar_reads_fields_and_words() -> None:
    now = scenes.NOW
    found = InteractionFilter.parse("  refund  session:fx_1 since:2h  policy flow:x ", now)
    assert found.q == "refund policy"
    assert (found.session, found.flow, found.search_type) == ("fx_1", "x", "fulltext")
    assert found.since is not None
    assert found.since.isoformat() == "2026-11-24T07:00:00+00:00"
    assert found.text == "refund session:fx_1 since:2h policy flow:x"
    assert InteractionFilter.parse("see https://x.test/a", now).q == "see https://x.test/a"
    wrong = ("type:fuzzy refund", "since:yesterday refund", "since:2026-11-24T08:00:00 refund")
    for bad in (*wrong, "model:gpt-4o", "principal: x"):
        try:
            InteractionFilter.parse(bad, now)
        except FilterError:
            continue
        raise AssertionError(f"{bad!r} was accepted")


def test_snippets_ages_and_notes() -> None:
    assert snippet_parts("a [[b]] c [[d") == [("a ", False), ("b", True), (" c ", False),
                                                 ("d", True)]  # fmt: skip
    assert snippet_parts("no markers") == [("no markers", False)]
    assert snippet_parts("") == []
    text = snippet_text("the\n[[refund]]  policy")
    assert text.plain == "the refund policy"
    assert [text.plain[s.start : s.end] for s in text.spans] == ["refund"]
    now = scenes.NOW
    assert [ago(now - d, now) for d in (timedelta(seconds=5),
            timedelta(minutes=12), timedelta(hours=3),
            timedelta(days=2))] == ["5s ago", "12m ago", "3h ago", "2d ago"]  # fmt: skip

    def call(captured: str | None, request: str | None = None) -> InteractionView:
        return InteractionView(id="i", created_at=now, endpoint="openai.chat", model="m",
                               status=200, outcome="ok", input_tokens=1, output_tokens=1,
                               cost="0", latency_ms=1.0, captured=captured,
                               request=request)  # fmt: skip

    assert content_note([call(None), call(None)]).startswith("Nothing was captured")
    assert content_note([call("metadata")]).startswith("Captured as metadata only")
    assert content_note([call("metadata"), call("full")]) == CONTENT_WITHHELD
    assert content_note([call("full", "hi")]) == ""


async def test_the_number_keys_leave_a_timeline_for_another_screen() -> None:
    app = sessions_scene.sessions_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await timeline(pilot)
        await pilot.press("1")
        await until(pilot, lambda: app.screen is app.main_screens["approvals"] or None)
        await pilot.press("7")
        await until(pilot, lambda: app.screen is app.main_screens["sessions"] or None)
        assert [type(s).__name__ for s in app.screen_stack[1:]] == ["SessionsScreen"]
