"""``PreloopApp``: wires the client, the live feed and the screens.

The app owns the one :class:`~hub.api_client.ApiClient` (the client the CLI uses too) and
runs the one :class:`~tui.feed.LiveFeed` in a worker. Every failure arrives as the core's
error tree and is shown by :meth:`PreloopApp.show_error` in the one error modal, titled from
this surface's table (:data:`TITLES`). Feed items go to the screens that follow the feed;
the latest connection state is the reactive ``connection``, which every main screen shows in
its connection bar. ``now`` is injected, so countdowns (and snapshots) can be frozen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import Worker, WorkerCancelled, WorkerError, WorkerFailed, WorkerState

from hub.api_client import ApiClient, http_note
from hub.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PolicyError,
    PolicyTooLargeError,
    PreloopError,
)
from hub.events import SystemEvent
from tui.feed import ConnectionState, FeedStatus, LiveFeed
from tui.keys import documented
from tui.screens import MAIN_SCREENS
from tui.screens.approvals import ApprovalsScreen
from tui.screens.base import DashboardScreen
from tui.screens.help import HelpScreen
from tui.screens.modals import ErrorModal

LIGHT_THEME, DARK_THEME = "textual-light", "textual-dark"
# The number keys share one footer entry ("1…7 Screens"): the screen's own keys come first.
SCREENS = Binding.Group("Screens", compact=True)


# The error modal's title for an error the server answered, by class (most specific first);
# any other error keeps its own title ("Server unreachable", "Invalid request", ...).
TITLES: dict[type[PreloopError], str] = {
    AuthenticationError: "Not signed in",
    PermissionDeniedError: "Not allowed",
    NotFoundError: "Not found",
    ConflictError: "Already decided",
    PolicyTooLargeError: "Too large",
    PayloadTooLargeError: "Too large",
    PolicyError: "Refused",
}


def error_text(error: PreloopError) -> tuple[str, str]:
    """The modal's title and message for ``error``: the message says where it came from
    (``(HTTP 403, PermissionDeniedError)``) when the server answered it."""
    title = next((TITLES[cls] for cls in type(error).__mro__ if cls in TITLES), error.title)
    note = http_note(error)
    return title, f"{error.message} {note}" if note else error.message


def _utcnow() -> datetime:
    return datetime.now(UTC)


class PreloopApp(App[None]):
    TITLE = "Preloop"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+p", "command_palette", "Command palette", show=False),
        Binding("t", "toggle_theme", "Light/dark", show=False),
        Binding("q", "quit", "Quit"),
        *(
            Binding(main.key, f"show_screen('{main.name}')", main.title, group=SCREENS)
            for main in MAIN_SCREENS
        ),
    ]
    connection: reactive[FeedStatus] = reactive(
        FeedStatus(state=ConnectionState.CONNECTING), always_update=True
    )

    def __init__(
        self,
        client: ApiClient,
        feed: Any | None = None,
        *,
        now: Callable[[], datetime] = _utcnow,
        theme: str = DARK_THEME,
    ) -> None:
        super().__init__()
        self.client = client
        self.live = feed if feed is not None else LiveFeed(client.url, client.api_key)
        self.now = now
        self.who = ""
        self.theme = theme
        self.main_screens = {main.name: main.make() for main in MAIN_SCREENS}
        approvals = self.main_screens["approvals"]
        assert isinstance(approvals, ApprovalsScreen)
        self.approvals = approvals
        self._workers_running: set[Worker[Any]] = set()

    def on_mount(self) -> None:
        for name, screen in self.main_screens.items():
            self.install_screen(screen, name)  # installed screens keep their state
        # Pushed (not the default screen), so ``switch_screen`` can replace it: Textual pops
        # a result callback that only pushed screens have.
        self.push_screen("approvals")

    def on_ready(self) -> None:
        """Once the first screen is mounted (so feed items find it ready)."""
        self.identify()
        self.follow_feed()

    async def on_unmount(self) -> None:
        """Stop every worker and wait for it (the feed closes its socket, requests in flight
        close theirs) before the client goes: nothing is left open when the app is gone."""
        running = {*self._workers_running, *self.workers}
        for worker in running:
            worker.cancel()
        for worker in running:
            with contextlib.suppress(WorkerCancelled, WorkerFailed, WorkerError):
                await worker.wait()
        await self.client.aclose()

    @work(exit_on_error=False)
    async def identify(self) -> None:
        try:
            me = await self.client.whoami()
        except PreloopError as exc:
            self.show_error(exc)
            return
        self.who = f"key {me.key_id} ({me.role})"
        self.connection = self.connection  # redraw the bar with who we are

    @work(group="feed", exclusive=True, exit_on_error=False)
    async def follow_feed(self) -> None:
        async for item in self.live.updates():
            if isinstance(item, FeedStatus):
                self.connection = item
            if not isinstance(item, SystemEvent):
                self.approvals.feed(item)
            if isinstance(item, FeedStatus | SystemEvent):  # to the screens that follow them
                for screen in self.main_screens.values():
                    if callable(follow := getattr(screen, "follow_system", None)):
                        follow(item)

    # -- errors ---------------------------------------------------------------------------

    def show_error(self, error: PreloopError) -> None:
        """The one error modal: a second error while it is open is added to it. Once the app
        is closing (its screens gone), there is nowhere to show it: it goes to the log."""
        title, message = error_text(error)
        if self._exit or not self.screen_stack:
            self.log.error(f"{title}: {message}")
            return
        if isinstance(self.screen, ErrorModal):
            self.screen.add(title, message)
        else:
            self.push_screen(ErrorModal(title, message))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_changed(event)

    def worker_changed(self, event: Worker.StateChanged) -> None:
        """Every worker's state (the app's and the screens'): kept, to be stopped on exit; one
        that failed in a way nobody expected still ends in the error modal, with no traceback
        (workers run with ``exit_on_error=False``)."""
        if event.state == WorkerState.RUNNING:
            self._workers_running.add(event.worker)
        elif event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._workers_running.discard(event.worker)
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            message = f"{type(error).__name__}: {error}"
            self.show_error(PreloopError(message, title="Unexpected error"))

    # -- actions --------------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(documented(self, self.screen)))

    def action_show_screen(self, name: str) -> None:
        """Show one of the main screens (its number key), keeping the one left as it was. From
        a view a main screen opened (a session's timeline), that view is closed first."""
        if name not in self.main_screens or self.screen is self.main_screens[name]:
            return
        mains = self.main_screens.values()
        while isinstance(self.screen, DashboardScreen) and self.screen not in mains:
            self.pop_screen()
        if self.screen in mains and self.screen is not self.main_screens[name]:  # no dialog
            self.switch_screen(name)

    def action_toggle_theme(self) -> None:
        self.theme = LIGHT_THEME if self.theme == DARK_THEME else DARK_THEME

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """The palette: every documented binding of the screen and the app, then Textual's."""
        seen: set[str] = set()
        for key in documented(self, screen):
            if key.action in seen or key.action == "command_palette":
                continue
            seen.add(key.action)
            run = partial(self.run_action, key.action, key.owner)
            yield SystemCommand(key.description, f"{key.section} · key: {key.key}", run)
        yield from super().get_system_commands(screen)
