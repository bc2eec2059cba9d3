"""The CLI's API client: URL and key from ``--url/--key``, ``PRELOOP_URL/PRELOOP_API_KEY``,
or the profile ``preloop login`` saved. API errors come back as the hub's error classes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from hub import errors
from hub.errors import ConfigError, PolicyError, PreloopError, Problem
from hub.profiles import read_profiles
from hub.settings import load_settings

if TYPE_CHECKING:
    import httpx

TIMEOUT_SECONDS = 30.0
CONNECT_TIMEOUT_SECONDS = 5.0


class ApiClient:
    def __init__(self, url: str, key: str) -> None:
        import httpx  # imported when a command talks to a server, not for --help

        self._transport_error = httpx.TransportError
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
            headers={"Authorization": f"Bearer {key}"} if key else {},
        )

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body if body is not None else {})

    def stream_lines(self, path: str) -> Iterator[str]:
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(response)
                yield from response.iter_lines()
        except self._transport_error as exc:
            raise self._unreachable(exc) from exc

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except self._transport_error as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise api_error(response)
        return response

    def _unreachable(self, exc: Exception) -> PreloopError:
        return PreloopError(
            f"cannot reach the Preloop server at {self.url} ({exc}). Is it running? "
            "Set PRELOOP_URL or run 'preloop login URL --key KEY'."
        )


def api_error(response: httpx.Response) -> PreloopError:
    """The hub error an API error envelope stands for."""
    try:
        body = response.json()["error"]
        kind, message = str(body["type"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        return PreloopError(f"HTTP {response.status_code} from the server: {response.text[:200]}")
    cls = getattr(errors, kind, None)
    if isinstance(cls, type) and issubclass(cls, PolicyError):  # PolicyTooLargeError too
        return cls([Problem(**p) for p in body.get("problems", [])])
    if isinstance(cls, type) and issubclass(cls, PreloopError):
        return cls(message)
    return PreloopError(f"HTTP {response.status_code}: {message}")


def resolve_target(url: str | None, key: str | None, profile: str = "default") -> tuple[str, str]:
    """The server URL and API key to use: flags, else PRELOOP_URL/PRELOOP_API_KEY, else the
    saved profile (the URL finally defaults to the local server)."""
    settings = load_settings()
    saved = read_profiles().get(profile, {})
    final_url = url or settings.url or saved.get("url") or settings.public_url
    final_key = key or settings.api_key or saved.get("api_key", "")
    if not final_key:
        raise ConfigError(
            "no API key: pass --key, set PRELOOP_API_KEY, or run 'preloop login URL --key KEY'"
        )
    return final_url, final_key


def connect(url: str | None, key: str | None, profile: str = "default") -> ApiClient:
    client = ApiClient(*resolve_target(url, key, profile))
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(client.close)
    return client


def server_options(func: Any) -> Any:
    """``--url``, ``--key`` and ``--profile`` for every command that talks to a server."""
    func = click.option(
        "--profile",
        default="default",
        show_default=True,
        envvar="PRELOOP_PROFILE",
        help="Saved login profile to use.",
    )(func)
    func = click.option("--key", default=None, help="API key (else PRELOOP_API_KEY or profile).")(
        func
    )
    return click.option(
        "--url", default=None, help="Server URL (else PRELOOP_URL or the saved profile)."
    )(func)
