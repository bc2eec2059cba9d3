"""The one API client of Preloop's REST API, shared by the ``preloop`` CLI and the dashboard.

- ``target``: where to connect (flags, ``PRELOOP_URL/PRELOOP_API_KEY``, the saved profile).
- ``errors``: an HTTP error answer as the core's error tree (``hub.errors``), once.
- ``client``: :class:`ApiClient`, one async method per route, decoding into ``hub.wire``.

This is the one part of the core that imports httpx (the import contracts allow it here and
nowhere else in ``hub``); the server never imports it. ``hub.api_client.target`` does not
import httpx, so resolving a target stays cheap.
"""

from hub.api_client.client import ApiClient, segment
from hub.api_client.errors import error_from_answer, http_note
from hub.api_client.target import Target, resolve_target

__all__ = ["ApiClient", "Target", "error_from_answer", "http_note", "resolve_target", "segment"]
