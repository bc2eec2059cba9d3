"""The Textual on-call dashboard: a pure client of the server's REST and WebSocket API.

Every decision made here goes through the same authorization and audit as any other channel,
because the dashboard holds nothing but an API key. The parts, from the network inwards:

- ``config``: where to connect (``--url/--key``, ``PRELOOP_URL/PRELOOP_API_KEY``, the profile
  ``preloop login`` saved), read without importing the server.
- ``client``: the one REST client (httpx), whose failures are all :class:`ServerError`.
- ``feed``: the WebSocket feed, reconnecting with backoff, reporting its connection state.
- ``queue``: the approvals queue as plain data (events in, rows out), free of Textual.
- ``app`` wires the screens (``screens/``, one per module) and widgets (``widgets/``).

Importing this package imports nothing heavy; ``preloop tui`` imports ``tui.app`` lazily.
"""
