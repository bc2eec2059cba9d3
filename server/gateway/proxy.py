"""``GatewayProxy``: the model gateway's HTTP edge, a raw ASGI handler.

One request, in order:

1. authenticate the ``Authorization: Bearer`` or ``x-api-key`` credential (``GatewayAuth``);
2. read the body (at most ``PRELOOP_GATEWAY_MAX_BODY_BYTES``) and decode only its head;
3. check the model against the credential's allowed models, route it (``ModelRouter``);
4. reserve the most it can cost against the budgets (``Budgets.admit``; a hard stop is a 429);
5. forward the client's bytes to the provider with the provider's key, changing only the
   model (alias → upstream id) and, for an OpenAI chat stream that did not ask for usage,
   ``stream_options.include_usage`` (the extra usage chunk is dropped on the way back);
6. stream the answer back chunk by chunk, reading it only for its usage (``dialects``);
7. settle the reservation to the actual cost and ``Ledger.record`` one ``UsageRecord``,
   also for refusals, errors and clients that went away mid-stream.

Nothing here reads the database: the collaborators cache. Nothing is logged per request at
INFO. Provider keys only ever travel in the upstream request's headers.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from decimal import Decimal
from typing import Any

import aiohttp
import msgspec

from hub.clock import Clock
from hub.errors import (
    AuthenticationError,
    ConfigError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreloopError,
    ValidationError,
)
from hub.gateway.ports import Admission, Budgets, GatewayAuth, Ledger, ModelRouter, Prices
from hub.gateway.records import Attribution, ModelRoute, ProviderKind, Usage, UsageRecord
from hub.settings import GatewaySettings
from server.gateway import dialects, translate
from server.gateway.dialects import CHAT, MESSAGES, RESPONSES, Dialect
from server.gateway.errors import UpstreamError, render, short_reason

log = logging.getLogger("preloop.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

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
_ANTHROPIC_HEADERS = (b"anthropic-version", b"anthropic-beta")
_ENDPOINTS = {
    ("openai", "POST", "chat/completions"): CHAT,
    ("openai", "POST", "responses"): RESPONSES,
    ("anthropic", "POST", "messages"): MESSAGES,
}
_json = msgspec.json.Encoder()


class _Call:
    """What one request has learned so far; the ledger record is made from it."""

    __slots__ = (
        "admission",
        "cost",
        "endpoint",
        "error",
        "model",
        "outcome",
        "provider",
        "status",
        "stream",
        "upstream_model",
        "usage",
        "who",
    )

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.who: Attribution | None = None
        self.model = ""
        self.upstream_model = ""
        self.provider = ""
        self.stream = False
        self.usage = Usage()
        self.cost = Decimal(0)
        self.status = 200
        self.outcome = "ok"
        self.error: str | None = None
        self.admission: Admission | None = None


class GatewayProxy:
    """The gateway edge. Serve it with ``handle(scope, receive, send, family)`` from the
    ``/openai/v1`` and ``/anthropic/v1`` mounts; ``chat`` is the in-process ``ModelGateway``."""

    def __init__(
        self,
        *,
        auth: GatewayAuth,
        router: ModelRouter,
        prices: Prices,
        budgets: Budgets,
        ledger: Ledger,
        clock: Clock,
        settings: GatewaySettings,
    ) -> None:
        self.auth = auth
        self.router = router
        self.prices = prices
        self.budgets = budgets
        self.ledger = ledger
        self.clock = clock
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    # --- the upstream connection pool ----------------------------------------------------
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.settings.max_connections, ttl_dns_cache=300, keepalive_timeout=60
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.settings.connect_timeout_seconds,
                    sock_read=self.settings.read_timeout_seconds,
                ),
                skip_auto_headers=("User-Agent",),
                json_serialize=lambda value: _json.encode(value).decode(),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- ASGI ----------------------------------------------------------------------------
    async def handle(self, scope: Scope, receive: Receive, send: Send, family: str) -> None:
        """One request to the ``family`` ("openai" or "anthropic") mount."""
        started = time.perf_counter()
        anthropic = family == "anthropic"
        tail = scope["path"].rstrip("/").rsplit("/v1/", 1)[-1].lstrip("/")
        method = scope["method"]
        dialect = _ENDPOINTS.get((family, method, tail))
        call = _Call(dialect.endpoint if dialect else f"{family}.models")  # openai.models...
        try:
            if dialect is None and not (method == "GET" and tail == "models"):
                raise NotFoundError(f"no such endpoint: {method} {scope['path']}")
            call.who = await self.auth.authenticate(_credential(scope))
            if dialect is None:
                await self._models(call, send, anthropic)
            else:
                body = await _read_body(receive, self.settings.max_body_bytes)
                extra = _anthropic_headers(scope) if anthropic else {}
                await self._forward(call, dialect, body, receive, send, extra)
        except PreloopError as exc:
            await self._refuse(call, exc, send, anthropic)
        finally:
            self._record(call, started)

    async def _refuse(self, call: _Call, exc: PreloopError, send: Send, anthropic: bool) -> None:
        rendered = render(exc, anthropic=anthropic, now=self.clock.now())
        call.status = rendered.status
        call.outcome = _outcome(exc)
        call.error = exc.message[:300]
        await send(
            {"type": "http.response.start", "status": rendered.status, "headers": rendered.headers}
        )
        await send({"type": "http.response.body", "body": rendered.body})

    async def _models(self, call: _Call, send: Send, anthropic: bool) -> None:
        """The models this credential may use, in the mount's format (Anthropic's lists its
        own family only)."""
        who = call.who
        assert who is not None
        routable = [
            (model, provider)
            for model, provider in await self.router.models(who.account_id)
            if _allowed(who, model)
        ]
        if anthropic:
            data: list[dict[str, Any]] = [
                {
                    "type": "model",
                    "id": model,
                    "display_name": model,
                    "created_at": provider.created_at.isoformat().replace("+00:00", "Z"),
                }
                for model, provider in routable
                if provider.kind == ProviderKind.ANTHROPIC
            ]
            first = data[0]["id"] if data else None
            last = data[-1]["id"] if data else None
            page = {"data": data, "has_more": False, "first_id": first, "last_id": last}
            body = _json.encode(page)
        else:
            data = [
                {"id": model, "object": "model", "created": 0, "owned_by": provider.name}
                for model, provider in routable
            ]
            body = _json.encode({"object": "list", "data": data})
        await send({"type": "http.response.start", "status": 200, "headers": _json_headers(body)})
        await send({"type": "http.response.body", "body": body})

    # --- forwarding ----------------------------------------------------------------------
    async def _forward(
        self,
        call: _Call,
        dialect: Dialect,
        body: bytes,
        receive: Receive,
        send: Send,
        extra: dict[str, str] | None = None,
    ) -> None:
        head = dialects.decode_head(body)
        who = call.who
        assert who is not None
        assert head.model is not None
        call.model = head.model
        call.stream = bool(head.stream)
        if not _allowed(who, head.model):
            raise PermissionDeniedError(
                f"model '{head.model}' is not allowed for this credential "
                f"(allowed: {', '.join(who.models)})"
            )
        route = await self.router.route(who.account_id, head.model, family=dialect.family)
        call.upstream_model = route.upstream_model
        call.provider = route.provider.name
        price = await self.prices.price(who.account_id, route.upstream_model)
        estimate = self.prices.estimate(
            price, input_bytes=len(body), max_output_tokens=head.max_output
        )
        call.admission = await self.budgets.admit(
            who, model=route.upstream_model, estimate=estimate
        )
        try:
            key = await self.router.provider_key(route.provider)
            strip = call.stream and dialect is CHAT and not head.wants_usage
            renamed = route.upstream_model if route.upstream_model != head.model else None
            if renamed is not None or strip:
                body = dialects.rewrite(body, model=renamed, include_usage=strip)
            headers = {**(extra or {}), "content-type": "application/json"}
            await self._exchange(call, dialect, route, key, headers, body, strip, receive, send)
        finally:
            call.cost = self.prices.cost(price, call.usage)
            await self.budgets.settle(call.admission, call.cost)

    async def _exchange(
        self,
        call: _Call,
        dialect: Dialect,
        route: ModelRoute,
        key: str,
        headers: dict[str, str],
        body: bytes,
        strip: bool,
        receive: Receive,
        send: Send,
    ) -> None:
        provider = route.provider
        if provider.kind == ProviderKind.ANTHROPIC:
            headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
            headers["x-api-key"] = key
        else:
            headers["authorization"] = f"Bearer {key}"
        base = provider.base_url.rstrip("/")
        path = dialect.upstream_path
        if dialect is MESSAGES and base.endswith("/v1"):
            path = path.removeprefix("/v1")
        url = base + path
        warnings = call.admission.warnings if call.admission else ()
        try:
            response = await self.session().post(url, data=body, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _upstream_error(provider.name, exc) from exc
        async with response:
            out = _answer_headers(response, warnings)
            if response.status >= 400:
                answer = await _read_answer(response, provider.name)
                call.status, call.outcome = response.status, "error"
                call.error = short_reason(response.status, answer)
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": out}
                )
                await send({"type": "http.response.body", "body": answer})
                return
            if not call.stream or "event-stream" not in response.content_type:
                answer = await _read_answer(response, provider.name)
                call.usage = dialect.usage(answer) or Usage()
                out.append((b"content-length", str(len(answer)).encode()))
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": out}
                )
                await send({"type": "http.response.body", "body": answer})
                return
            await self._stream(call, dialect, response, out, strip, len(body), receive, send)

    async def _stream(
        self,
        call: _Call,
        dialect: Dialect,
        response: aiohttp.ClientResponse,
        headers: list[tuple[bytes, bytes]],
        strip: bool,
        input_bytes: int,
        receive: Receive,
        send: Send,
    ) -> None:
        meter = dialect.meter(strip_usage=strip)
        gone = asyncio.Event()

        async def watch() -> None:  # a client that leaves closes the upstream at once
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()
            response.close()

        watcher = asyncio.create_task(watch())
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            async for chunk in response.content.iter_any():
                out = meter.feed(chunk)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if gone.is_set():
                    break
            tail = meter.finish()
            if not gone.is_set():
                await send({"type": "http.response.body", "body": tail})
        except (aiohttp.ClientError, TimeoutError) as exc:
            if not gone.is_set():
                call.outcome, call.error = "error", _upstream_error(call.provider, exc).message
                await send(
                    {"type": "http.response.body", "body": _stream_error(dialect, call.error)}
                )
        finally:
            watcher.cancel()
            if gone.is_set():
                call.outcome, call.error = "disconnected", "the client went away mid-stream"
            call.usage = (
                meter.estimated(input_bytes)
                if call.outcome != "ok"
                else (meter.usage or meter.estimated(input_bytes))
            )

    # --- the ledger ----------------------------------------------------------------------
    def _record(self, call: _Call, started: float) -> None:
        who = call.who
        if who is None:
            return  # nobody to attribute it to: an unauthenticated request is not accounted
        usage = call.usage
        self.ledger.record(
            UsageRecord(
                id=uuid.uuid4().hex,
                account_id=who.account_id,
                api_key_id=who.api_key_id,
                principal=who.principal,
                flow=who.flow,
                execution_id=who.execution_id,
                endpoint=call.endpoint,
                model=call.model,
                upstream_model=call.upstream_model,
                provider=call.provider,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cached_tokens=usage.cached_tokens,
                cost=call.cost,
                latency_ms=(time.perf_counter() - started) * 1000,
                status=call.status,
                outcome=call.outcome,
                stream=call.stream,
                created_at=self.clock.now(),
                error=call.error,
            )
        )

    # --- in process (ModelGateway) -------------------------------------------------------
    async def chat(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI chat completion for ``who``, accounted and budgeted like a request (AI
        approval). A model routed only to an Anthropic provider is asked in its format and the
        answer translated. Refusals raise (``BudgetExceeded``, ``NotFoundError``...); a
        provider's error answer raises ``UpstreamError`` naming its status."""
        started = time.perf_counter()
        request: dict[str, Any] = {**body, "stream": False}
        dialect = CHAT
        try:
            await self.router.route(who.account_id, str(body.get("model")), family="openai")
        except NotFoundError:
            try:
                await self.router.route(who.account_id, str(body.get("model")), family="anthropic")
            except NotFoundError:
                pass  # _forward raises the openai family's NotFoundError, and records it
            else:
                dialect, request = MESSAGES, translate.to_anthropic(request)
        call = _Call(dialect.endpoint)
        call.who = who
        sent: dict[str, Any] = {"body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
            else:
                sent["body"] += message.get("body", b"")

        async def never() -> Message:
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}  # pragma: no cover - never reached

        try:
            await self._forward(call, dialect, _json.encode(request), never, capture)
        except PreloopError as exc:
            call.status = render(exc, anthropic=False).status
            call.outcome = _outcome(exc)
            call.error = exc.message[:300]
            raise
        finally:
            self._record(call, started)
        status = sent.get("status", 502)
        if status >= 400:
            raise UpstreamError(call.error or "the provider failed", status=status)
        answer: dict[str, Any] = msgspec.json.decode(sent["body"])
        return translate.from_anthropic(answer) if dialect is MESSAGES else answer


# --- helpers ------------------------------------------------------------------------------
def _outcome(exc: PreloopError) -> str:
    """``error`` when the gateway or the provider failed, ``refused`` when the request was."""
    return "error" if isinstance(exc, (UpstreamError, ConfigError)) else "refused"


def _anthropic_headers(scope: Scope) -> dict[str, str]:
    """The client's ``anthropic-version`` and ``anthropic-beta``, passed to the provider."""
    return {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name in _ANTHROPIC_HEADERS
    }


def _credential(scope: Scope) -> str:
    bearer = ""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                bearer = token.strip()
        elif name == b"x-api-key" and value.strip():
            return str(value.decode("latin-1")).strip()
    if not bearer:
        raise AuthenticationError(
            "no credential: send a Preloop API key or runtime token as "
            "'Authorization: Bearer <key>' or 'x-api-key: <key>'"
        )
    return bearer


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationError("the client went away while sending the request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"the request body is larger than {limit} bytes (PRELOOP_GATEWAY_MAX_BODY_BYTES)"
            )
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _read_answer(response: aiohttp.ClientResponse, provider: str) -> bytes:
    try:
        return await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _upstream_error(provider, exc) from exc


def _upstream_error(provider: str, exc: BaseException) -> UpstreamError:
    if isinstance(exc, TimeoutError):
        return UpstreamError(
            f"provider '{provider}' did not answer in time (PRELOOP_GATEWAY_*_TIMEOUT_SECONDS)",
            status=504,
        )
    return UpstreamError(f"provider '{provider}' could not be reached ({type(exc).__name__})")


def _allowed(who: Attribution, model: str) -> bool:
    return not who.models or any(fnmatch.fnmatchcase(model, glob) for glob in who.models)


def _json_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]


def _answer_headers(
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


def _stream_error(dialect: Dialect, message: str) -> bytes:
    """An error inside a stream that has started, in the stream's own framing."""
    if dialect is MESSAGES:
        error = {"type": "error", "error": {"type": "api_error", "message": message}}
        return b"event: error\ndata: " + _json.encode(error) + b"\n\n"
    error = {"error": {"message": message, "type": "upstream_error", "param": None, "code": None}}
    return b"data: " + _json.encode(error) + b"\n\n"
