"""Chat-ops and notification adapters: one package per approval channel, whole.

    bots/slack/       notifier, Block Kit, wire names, the inbound handlers (HTTP and
                      Socket Mode)
    bots/mattermost/  notifier, posts, signed button tokens, the button callback
    bots/email/       notifier (mail with per-recipient links), the link pages
    bots/push/        notifier (phones, through the push proxy)

Each notifier implements the hub's notifier port (``hub.notifier``); each inbound handler
turns a click into one core use case, deciding as the person behind a channel identity
(``hub.channel_decisions``). Inbound handlers take a request's raw pieces and answer a
:class:`bots._replies.Reply`: the server only mounts them (``server/channel_routes.py``).
Bots import the core, never the server; only the composition root imports bots (import
contracts in pyproject.toml; docs/decisions/0076-channel-identity-decisions.md).
"""
