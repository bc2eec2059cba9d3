"""The footer every main screen docks at the bottom: compact, and without the command
palette's entry (``ctrl+p`` is listed in the help), so the screen's own keys, which come
first, fit an 80-column terminal ahead of the app's."""

from __future__ import annotations

from textual.widgets import Footer


class ScreenFooter(Footer):
    def __init__(self) -> None:
        super().__init__(compact=True, show_command_palette=False)
