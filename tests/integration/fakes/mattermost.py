"""A local fake of the Mattermost REST API (there is no installable Mattermost server): answers
``GET /api/v4/users/me``, ``POST /api/v4/posts`` and ``PUT /api/v4/posts/{id}/patch`` and
records what it received."""

from __future__ import annotations

import threading
from typing import Any

from litestar import Litestar, Request, get, post, put
from litestar.params import FromPath


class FakeMattermost:
    """What the fake Mattermost API received: (method, path, authorization, json)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, Any]] = []
        self.posts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def app(self) -> Litestar:
        fake = self

        @get("/api/v4/users/me")
        async def me(request: Request[Any, Any, Any]) -> dict[str, Any]:
            fake._record(request, None)
            return {"id": "bot-user", "username": "preloop"}

        @post("/api/v4/posts", status_code=201)
        async def create(request: Request[Any, Any, Any]) -> dict[str, Any]:
            body = await request.json()
            fake._record(request, body)
            with fake._lock:
                post_id = f"post{len(fake.posts) + 1}"
                fake.posts[post_id] = {"id": post_id, **body}
                return fake.posts[post_id]

        @put("/api/v4/posts/{post_id:str}/patch")
        async def patch(request: Request[Any, Any, Any], post_id: FromPath[str]) -> dict[str, Any]:
            body = await request.json()
            fake._record(request, body)
            with fake._lock:
                fake.posts[post_id].update(body)
                return fake.posts[post_id]

        return Litestar(route_handlers=[me, create, patch])

    def _record(self, request: Request[Any, Any, Any], body: Any) -> None:
        with self._lock:
            self.requests.append(
                (request.method, request.url.path, request.headers.get("authorization", ""), body)
            )

    def created(self) -> list[dict[str, Any]]:
        with self._lock:
            return [body for method, _, _, body in self.requests if method == "POST"]

    def patches(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return [(path, body) for method, path, _, body in self.requests if method == "PUT"]
