"""The REST API under ``/api/v1``: every route authenticated and role-checked."""

from server.api.router import api_router

__all__ = ["api_router"]
