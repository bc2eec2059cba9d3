"""The provider side: one pooled aiohttp session per process, the upstream URL and key
headers of a request, the answer headers passed back, and transport failures as
``ProviderUnavailableError`` (never with the key or the provider's message)."""

from __future__ import annotations

import io

import aiohttp
import msgspec

from hub.model_gateway.records import Provider, ProviderKind
from hub.settings import GatewaySettings
from server.model_gateway.dialects import MESSAGES, Dialect
from server.model_gateway.errors import ProviderUnavailableError

WARNING_HEADER = b"preloop-budget-warning"
ANTHROPIC_VERSION = "2023-06-01"  # sent when the client named none
# Provider answer headers a client may use (request ids, rate limits); the rest stay behind.
_PASSED_HEADERS = frozenset(
    {
        "x-request-id",
        "request-id",
        "openai-processing-ms",
        "openai-version",
        "retry-after",
        "x-should-retry",
    }
)
_PASSED_PREFIXES = ("x-ratelimit-", "anthropic-ratelimit-")
_json = msgspec.json.Encoder()
# aiohttp sends a bytes body in one write, and warns above 1 MiB (it would hold the loop):
# larger bodies go as a stream.
LARGE_BODY = 1024 * 1024


def payload(body: bytes) -> bytes | io.BytesIO:
    return io.BytesIO(body) if len(body) > LARGE_BODY else body


def open_session(settings: GatewaySettings) -> aiohttp.ClientSession:
    """The pool to every provider (keep-alive, DNS cache); call on the serving loop."""
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections, ttl_dns_cache=300, keepalive_timeout=60
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None,
            connect=settings.connect_timeout_seconds,
            sock_read=settings.read_timeout_seconds,
        ),
        skip_auto_headers=("User-Agent",),
    )


def url_for(provider: Provider, dialect: Dialect) -> str:
    """The endpoint under the provider's base URL (OpenAI's bases end in ``/v1``; an
    Anthropic base may or may not)."""
    base = provider.base_url.rstrip("/")
    path = dialect.upstream_path
    if dialect is MESSAGES and base.endswith("/v1"):
        path = path.removeprefix("/v1")
    return base + path


def add_key(headers: dict[str, str], provider: Provider, key: str) -> None:
    """The provider's key where its API expects it."""
    if provider.kind == ProviderKind.ANTHROPIC:
        headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
        headers["x-api-key"] = key
    else:
        headers["authorization"] = f"Bearer {key}"


async def read_answer(response: aiohttp.ClientResponse, provider: str) -> bytes:
    try:
        return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise upstream_error(provider, exc) from exc


def upstream_error(provider: str, exc: BaseException) -> ProviderUnavailableError:
    if isinstance(exc, TimeoutError):
        return ProviderUnavailableError(
            f"provider '{provider}' did not answer in time (PRELOOP_GATEWAY_*_TIMEOUT_SECONDS)",
            status=504,
        )
    return ProviderUnavailableError(
        f"provider '{provider}' could not be reached ({type(exc).__name__})"
    )


def answer_headers(
    response: aiohttp.ClientResponse, warnings: tuple[str, ...]
) -> list[tuple[bytes, bytes]]:
    out = [
        (
            b"content-type",
            response.headers.get("content-type", "application/json").encode("latin-1"),
        )
    ]
    for name, value in response.headers.items():
        lower = name.lower()
        if lower in _PASSED_HEADERS or lower.startswith(_PASSED_PREFIXES):
            out.append((lower.encode("latin-1"), value.encode("latin-1")))
    if warnings:
        out.append((WARNING_HEADER, "; ".join(warnings).encode("latin-1", "replace")))
    return out


def stream_error(dialect: Dialect, message: str) -> bytes:
    """An error inside a stream that has started, in the stream's own framing."""
    if dialect is MESSAGES:
        error = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + _json.encode(error) + b"\n\n"
    error = {"error": {"message": message, "type": "upstream_error", "param": None, "code": None}}
    return b"data: " + _json.encode(error) + b"\n\n"
