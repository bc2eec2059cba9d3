"""The Slack channel's wire names, shared by the messages it posts and the handlers of what
comes back: a button's ``action_id`` carries the request id after its prefix and its
``value`` the account id; the deny modal's ``callback_id`` and its reason field."""

from __future__ import annotations

EVENTS_PATH = "/slack/events"  # where Slack's signed HTTP callbacks arrive
APPROVE_ACTION = "preloop_approve:"  # + request id
DENY_ACTION = "preloop_deny:"  # + request id
DECISION_BLOCK = "preloop_decision"  # the block holding the two buttons
DENY_VIEW = "preloop_deny"  # the deny modal's callback_id
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
MAX_COMMENT = 1000  # characters of a deny reason
TEXT_LIMIT = 3000  # Slack's limit for a section block's text
