"""The Textual on-call dashboard: a pure client of the server's REST and WebSocket API.

Every decision made here goes through the same authorization and audit as any other channel,
because the dashboard holds nothing but an API key. The parts, from the network inwards:

- the REST client is the one the CLI uses too, ``hub.api_client`` (``ApiClient``, answers
  decoded into ``hub.wire`` types, failures as the core's error tree); ``preloop tui``
  (``server/cli/tui.py``) resolves where to connect with the CLI's target options.
- ``feed``: the WebSocket feed, reconnecting with backoff, reporting its connection state.
- ``queue``: the approvals queue as plain data (events in, rows out), free of Textual.
- ``app`` wires the screens (``screens/``, one per module) and widgets (``widgets/``).

Importing this package imports nothing heavy; ``preloop tui`` imports ``tui.app`` lazily.
"""
