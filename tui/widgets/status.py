"""The connection bar: who the dashboard is signed in as, where, and whether it is live.

Always visible (every main screen docks one at the top), in words as well as colour, so it
reads the same in light and dark terminals and without colour.
"""

from __future__ import annotations

from textual.widgets import Static

from tui.feed import ConnectionState, FeedStatus

_MARK = {
    ConnectionState.CONNECTING: "…",
    ConnectionState.CONNECTED: "●",
    ConnectionState.DISCONNECTED: "○",
    ConnectionState.REJECTED: "✕",
}


class ConnectionBar(Static):
    def show(self, status: FeedStatus, server: str, who: str) -> None:
        state = status.state
        text = f"{_MARK[state]} {state.value}"
        if state == ConnectionState.DISCONNECTED:
            text += f": {status.detail}" if status.detail else ""
            if status.retry_in is not None:
                text += f"; retrying in {status.retry_in:g}s"
        elif state == ConnectionState.REJECTED:
            text += f": {status.detail}"
        text += f"  ·  {server}"
        if who:
            text += f"  ·  {who}"
        self.update(text)
        for name in ConnectionState:
            self.set_class(name == state, f"-{name.value}")
