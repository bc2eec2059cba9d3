"""A local fake of Vault's (and OpenBao's) HTTP API for the KV version 2 secrets engine.

A raw ASGI app served on 127.0.0.1 by ``serve_asgi``. It checks ``X-Vault-Token`` (403
``permission denied`` otherwise, as Vault does), the ``X-Vault-Namespace`` when one is
required, and speaks KV v2's JSON: ``GET /v1/{mount}/data/{path}`` answers
``{"data": {"data": {...}, "metadata": {"version": N, ...}}}``; ``POST`` takes
``{"options": {"cas": N}, "data": {...}}`` and answers the new version's metadata;
``DELETE`` soft-deletes the latest version (a later read is a 404 carrying the metadata with
its ``deletion_time``). Errors use Vault's envelope ``{"errors": [...]}``. ``sealed = True``
answers 503 ``Vault is sealed`` to everything.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from tests.integration.fakes import read_body

TOKEN = "hvs.test-vault-token-0123456789"


class FakeVault:
    def __init__(self, *, mount: str = "secret", namespace: str = "") -> None:
        self.mount = mount
        self.namespace = namespace
        self.sealed = False
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers
        self._versions: dict[str, list[dict[str, Any]]] = {}  # path -> versions (1-based)
        self._lock = threading.Lock()

    def write(self, path: str, data: dict[str, Any]) -> None:
        """Put a version directly (the operator's side: ``vault kv put``)."""
        with self._lock:
            self._add(path, data)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status, answer = self._answer(scope["method"], scope["path"], headers, body)
        payload = json.dumps(answer).encode() if answer is not None else b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def _answer(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | None]:
        self.requests.append((method, path, headers))
        if self.sealed:
            return 503, {"errors": ["Vault is sealed"]}
        if headers.get("x-vault-token") != TOKEN:
            return 403, {"errors": ["permission denied"]}
        if self.namespace and headers.get("x-vault-namespace") != self.namespace:
            return 403, {"errors": ["permission denied"]}
        prefix = f"/v1/{self.mount}/data/"
        if not path.startswith(prefix):
            return 404, {"errors": [f"no handler for route '{path.removeprefix('/v1/')}'"]}
        secret_path = path.removeprefix(prefix)
        with self._lock:
            if method == "GET":
                return self._read(secret_path)
            if method in ("POST", "PUT"):
                return self._post(secret_path, body)
            if method == "DELETE":
                versions = self._versions.get(secret_path)
                if versions:
                    versions[-1]["metadata"]["deletion_time"] = _now()
                return 204, None
        return 405, {"errors": [f"unsupported operation {method}"]}

    def _read(self, path: str) -> tuple[int, dict[str, Any] | None]:
        versions = self._versions.get(path)
        if not versions:
            return 404, {"errors": []}
        latest = versions[-1]
        if latest["metadata"]["deletion_time"]:
            return 404, {"data": {"data": None, "metadata": latest["metadata"]}}
        return 200, {"request_id": "fake", "data": latest}

    def _post(self, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        try:
            request = json.loads(body or b"{}")
            data = request["data"]
            assert isinstance(data, dict)
        except (ValueError, KeyError, AssertionError):
            return 400, {"errors": ["no data provided"]}
        cas = (request.get("options") or {}).get("cas")
        current = len(self._versions.get(path, []))
        if cas is not None and cas != current:
            return 400, {"errors": ["check-and-set parameter did not match the current version"]}
        metadata = self._add(path, data)
        return 200, {"data": metadata}

    def _add(self, path: str, data: dict[str, Any]) -> dict[str, Any]:
        versions = self._versions.setdefault(path, [])
        metadata = {
            "created_time": _now(),
            "custom_metadata": None,
            "deletion_time": "",
            "destroyed": False,
            "version": len(versions) + 1,
        }
        versions.append({"data": dict(data), "metadata": metadata})
        return metadata


def _now() -> str:
    return datetime.now(UTC).isoformat()
