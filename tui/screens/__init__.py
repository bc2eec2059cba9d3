"""One screen per module. Screens orchestrate: they call the app's client in workers, fold
feed events into their state and hand widgets what to show.

``MAIN_SCREENS`` lists the dashboard's main screens in the order of their number keys; the
app binds each key and keeps every screen installed, so switching away and back keeps its
state (selection, filters, scroll). A new screen adds one line here; it is a
:class:`tui.screens.base.DashboardScreen`, its styles in the ``.tcss`` file beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from tui.screens.approvals import ApprovalsScreen
from tui.screens.audit import AuditScreen
from tui.screens.base import DashboardScreen
from tui.screens.devices import DevicesScreen
from tui.screens.policies import PoliciesScreen
from tui.screens.servers import ServersScreen
from tui.screens.sessions import SessionsScreen
from tui.screens.usage import UsageScreen


class MainScreen(NamedTuple):
    key: str  # the number key that shows it
    name: str  # its installed name (``app.show_screen(name)``)
    title: str
    make: Callable[[], DashboardScreen]


MAIN_SCREENS: tuple[MainScreen, ...] = (
    MainScreen("1", "approvals", "Approvals", ApprovalsScreen),
    MainScreen("2", "audit", "Audit", AuditScreen),
    MainScreen("3", "policies", "Policies", PoliciesScreen),
    MainScreen("4", "servers", "Servers", ServersScreen),
    MainScreen("5", "devices", "Devices", DevicesScreen),
    MainScreen("6", "usage", "Usage", UsageScreen),
    MainScreen("7", "sessions", "Sessions", SessionsScreen),
)
