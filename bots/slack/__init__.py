"""The Slack channel, whole: the notifier (``notifier``), its Block Kit (``blocks``), the wire
names both sides share (``wire``), the handlers of what comes back (``interactions``: buttons,
the deny modal, ``/preloop``; over signed HTTP or Socket Mode) and the worker's Socket Mode
connection (``socket_mode``).

Importing the package loads slack_sdk's client only; slack-bolt is loaded by the two inbound
modules, which the server imports when Slack's callbacks are on.
"""

from bots.slack.blocks import (
    announcement_blocks,
    arguments_text,
    deny_modal,
    pending_blocks,
    settled_blocks,
)
from bots.slack.notifier import SlackNotifier
from bots.slack.wire import APPROVE_ACTION, DENY_ACTION, DENY_VIEW, EVENTS_PATH

__all__ = [
    "APPROVE_ACTION",
    "DENY_ACTION",
    "DENY_VIEW",
    "EVENTS_PATH",
    "SlackNotifier",
    "announcement_blocks",
    "arguments_text",
    "deny_modal",
    "pending_blocks",
    "settled_blocks",
]
