"""``ModelGatewayProxy``: the model gateway's HTTP edge, a raw ASGI handler.

One request, in order:

1. authenticate the ``Authorization: Bearer`` or ``x-api-key`` credential (``GatewayAuth``);
2. read the body (at most ``PRELOOP_GATEWAY_MAX_BODY_BYTES``) and decode only its head;
3. check the model against the credential's allowed models, route it (``ModelRouter``);
4. reserve the most it can cost against the budgets (``Budgets.admit``; a hard stop is a 429):
   its input, and its output limit times its choices (``dialects.output_bound``; a limit
   below 1 is refused, not read as "no output"); an embeddings request reserves its input
   tokens alone (``embeddings.input_tokens``), and is never streamed;
5. forward the client's bytes to the provider with the provider's key, changing only the
   model (alias → upstream id) and, for an OpenAI chat stream that did not ask for usage,
   ``stream_options.include_usage`` (the extra usage chunk is dropped on the way back);
6. stream the answer back chunk by chunk, reading it only for its usage (``dialects``);
7. settle the reservation to the actual cost and ``Ledger.record`` one ``UsageRecord``,
   also for refusals, errors and clients that went away mid-stream;
8. when a capture rule applies (off by default; ``GatewayCapture.rule_for``, cached), hand the
   record and the bytes already held (request, answer, a stream's chunks up to a cap) to
   ``GatewayCapture.capture``, which queues them: parsing, redaction and storage happen in its
   writer, off the request path (decision 0109).

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
    ConfigError,
    NotFoundError,
    PermissionDeniedError,
    PreloopError,
    ValidationError,
)
from hub.model_gateway.capture import GatewayCapture, Pending, StreamTap
from hub.model_gateway.capture_records import CaptureRule
from hub.model_gateway.ports import Admission, Budgets, GatewayAuth, Ledger, ModelRouter, Prices
from hub.model_gateway.records import (
    Attribution,
    ModelPrice,
    ModelRoute,
    ProviderKind,
    Usage,
    UsageRecord,
)
from hub.settings import GatewaySettings
from server.model_gateway import dialects, embeddings, inbound, translate, upstream
from server.model_gateway.dialects import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, Dialect
from server.model_gateway.errors import ProviderUnavailableError, render, short_reason

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger("preloop.gateway")
_ENDPOINTS = {
    ("openai", "POST", "chat/completions"): CHAT,
    ("openai", "POST", "responses"): RESPONSES,
    ("openai", "POST", "embeddings"): EMBEDDINGS,
    ("anthropic", "POST", "messages"): MESSAGES,
}
_json = msgspec.json.Encoder()
# What capture may keep: conversations. Never embeddings (capture embeds what it keeps, which
# through the gateway would capture itself).
_CAPTURED = frozenset({CHAT.endpoint, RESPONSES.endpoint, MESSAGES.endpoint})


class _Call:
    """What one request has learned so far; the ledger record is made from it."""

    __slots__ = (
        "accounted",
        "admission",
        "answer",
        "body",
        "cost",
        "endpoint",
        "error",
        "estimated_input",
        "model",
        "outcome",
        "price",
        "provider",
        "responded",
        "rule",
        "session_id",
        "started",
        "status",
        "stream",
        "tap",
        "upstream_model",
        "usage",
        "who",
    )

    def __init__(self, endpoint: str) -> None:
        self.started = time.perf_counter()
        self.accounted = False
        self.responded = False  # the status line went out: no error envelope any more
        self.price: ModelPrice | None = None
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
        self.estimated_input = 0  # embeddings: the input tokens reserved for
        self.session_id: str | None = None  # X-Preloop-Session-Id
        self.rule: CaptureRule | None = None  # capture on: what to keep (decision 0109)
        self.body: bytes | None = None  # the request, kept by reference for capture
        self.answer: bytes | None = None  # a whole answer, kept by reference for capture
        self.tap: StreamTap | None = None  # a stream's raw bytes, up to a cap, for capture


class ModelGatewayProxy:
    """The gateway edge. Serve it with ``handle(scope, receive, send, family)`` from the
    ``/openai/v1`` and ``/anthropic/v1`` mounts; ``chat`` and ``embed`` are the in-process
    ``ModelGateway``."""

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
        capture: GatewayCapture | None = None,
    ) -> None:
        self.auth = auth
        self.capture = capture
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
            self._session = upstream.open_session(self.settings)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # --- ASGI ----------------------------------------------------------------------------
    async def handle(self, scope: Scope, receive: Receive, send: Send, family: str) -> None:
        """One request to the ``family`` ("openai" or "anthropic") mount. The request is
        recorded in the ledger just before the answer's last bytes go out (a client that has its
        answer has its usage queued), and its reservation settled right after."""
        anthropic = family == "anthropic"
        tail = scope["path"].rstrip("/").rsplit("/v1/", 1)[-1].lstrip("/")
        method = scope["method"]
        dialect = _ENDPOINTS.get((family, method, tail))
        call = _Call(dialect.endpoint if dialect else f"{family}.models")  # openai.models...

        async def send_accounted(message: Message) -> None:
            if message["type"] == "http.response.start":
                call.responded = True
            elif not message.get("more_body"):
                self._account(call)
            await send(message)

        try:
            if dialect is None and not (method == "GET" and tail == "models"):
                raise NotFoundError(f"no such endpoint: {method} {scope['path']}")
            call.who = await self.auth.authenticate(inbound.credential(scope))
            call.session_id = inbound.session_id(scope)
            if dialect is None:
                await self._models(call, send_accounted, anthropic)
            else:
                body = await inbound.read_body(receive, self.settings.max_body_bytes)
                extra = inbound.anthropic_headers(scope) if anthropic else {}
                await self._forward(call, dialect, body, receive, send_accounted, extra)
        except PreloopError as exc:
            await self._refuse(call, exc, send_accounted, anthropic)
        except Exception:  # a bug: fail closed, in the envelope, and still account
            log.exception("model gateway: unexpected error on %s", call.endpoint)
            if call.responded:
                raise
            failure = ProviderUnavailableError(
                "the gateway failed unexpectedly; see its log", status=500
            )
            await self._refuse(call, failure, send_accounted, anthropic)
        finally:
            await self._settle(call)  # also accounts when no last bytes went out

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
        headers = inbound.json_headers(body)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
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
        bound = dialects.output_bound(head, dialect)
        if dialect is EMBEDDINGS:  # no output, never streamed: the input is the bound
            call.estimated_input = embeddings.input_tokens(body)
        who = call.who
        assert who is not None
        assert head.model is not None
        call.model = head.model
        call.stream = bool(head.stream) and dialect is not EMBEDDINGS
        if self.capture is not None:
            await self._plan_capture(call, who, body)
        if not _allowed(who, head.model):
            raise PermissionDeniedError(
                f"model '{head.model}' is not allowed for this credential "
                f"(allowed: {', '.join(who.models)})"
            )
        route = await self._route(who, head.model, dialect)
        call.upstream_model = route.upstream_model
        call.provider = route.provider.name
        price = call.price = await self.prices.price(who.account_id, route.upstream_model)
        if dialect is EMBEDDINGS:
            estimate = self.prices.cost(price, Usage(input_tokens=call.estimated_input))
        else:
            estimate = self.prices.estimate(
                price,
                input_bytes=len(body),
                max_output_tokens=bound.max_tokens,
                choices=bound.choices,
            )
        call.admission = await self.budgets.admit(
            who, model=route.upstream_model, estimate=estimate
        )
        key = await self.router.provider_key(route.provider)
        strip = call.stream and dialect is CHAT and not head.wants_usage
        renamed = route.upstream_model if route.upstream_model != head.model else None
        if renamed is not None or strip:
            body = dialects.rewrite(body, model=renamed, include_usage=strip)
        headers = {**(extra or {}), "content-type": "application/json"}
        await self._exchange(call, dialect, route, key, headers, body, strip, receive, send)

    async def _route(self, who: Attribution, model: str, dialect: Dialect) -> ModelRoute:
        """The route of ``model`` in the dialect's family. An embeddings model routed only to
        an Anthropic provider is a 400 saying why (Anthropic has no embeddings API)."""
        try:
            return await self.router.route(who.account_id, model, family=dialect.family)
        except NotFoundError:
            if dialect is not EMBEDDINGS:
                raise
            try:
                route = await self.router.route(who.account_id, model, family="anthropic")
            except NotFoundError:
                pass
            else:
                raise ValidationError(
                    f"model '{model}' is routed to Anthropic provider '{route.provider.name}', "
                    "which has no embeddings API: route an embeddings model to a provider of "
                    "kind openai (OpenAI, Ollama, vLLM, TEI...)",
                    field="model",
                ) from None
            raise

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
        url = upstream.url_for(provider, dialect)
        upstream.add_key(headers, provider, key)
        warnings = call.admission.warnings if call.admission else ()
        try:
            response = await self.session().post(url, data=upstream.payload(body), headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise upstream.upstream_error(provider.name, exc) from exc
        async with response:
            out = upstream.answer_headers(response, warnings)
            if response.status >= 400:
                answer = await upstream.read_answer(response, provider.name)
                call.answer, call.tap = answer, None
                call.status, call.outcome = response.status, "error"
                call.error = short_reason(response.status, answer)
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": out}
                )
                await send({"type": "http.response.body", "body": answer})
                return
            if not call.stream or "event-stream" not in response.content_type:
                answer = await upstream.read_answer(response, provider.name)
                call.answer, call.tap = answer, None
                # an embeddings answer without usage is charged its estimate, never nothing
                call.usage = dialect.usage(answer) or Usage(input_tokens=call.estimated_input)
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
        tap = call.tap
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        try:
            async for chunk in response.content.iter_any():
                if tap is not None:
                    tap.feed(chunk)
                out = meter.feed(chunk)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if gone.is_set():
                    break
            tail = meter.finish()
            call.usage = meter.estimated(input_bytes)  # reported, or estimated when cut
            if not gone.is_set():
                await send({"type": "http.response.body", "body": tail})
        except (aiohttp.ClientError, TimeoutError) as exc:
            call.usage = meter.estimated(input_bytes)
            if not gone.is_set():
                call.outcome = "error"
                call.error = upstream.upstream_error(call.provider, exc).message
                failed = upstream.stream_error(dialect, call.error)
                await send({"type": "http.response.body", "body": failed})
        finally:
            watcher.cancel()
            if gone.is_set():
                call.usage = meter.estimated(input_bytes)
                call.outcome, call.error = "disconnected", "the client went away mid-stream"

    # --- accounting ----------------------------------------------------------------------
    def _account(self, call: _Call) -> None:
        """Once per request: its cost, and its ledger record (queued, never awaited)."""
        if call.accounted:
            return
        call.accounted = True
        if call.admission is not None:
            call.cost = self.prices.cost(call.price, call.usage)
        self._record(call)

    async def _settle(self, call: _Call) -> None:
        """The reservation replaced by the actual cost; after the answer's last bytes, so the
        budget's database write is not on the client's wait."""
        self._account(call)
        if call.admission is not None:
            admission, call.admission = call.admission, None
            await self.budgets.settle(admission, call.cost)

    async def _plan_capture(self, call: _Call, who: Attribution, body: bytes) -> None:
        """Capture's rule for ``who`` (cached; ``None``: off), and what to keep for it: the
        request's bytes by reference, and a tap on a stream's bytes up to a cap."""
        assert self.capture is not None
        if call.endpoint not in _CAPTURED:
            return
        rule = call.rule = await self.capture.rule_for(who)
        if rule is not None and rule.mode.keeps_content:
            call.body = body
            if call.stream:
                call.tap = StreamTap(8 * rule.max_bytes + 4096)  # SSE framing around the text

    def _record(self, call: _Call) -> None:
        who = call.who
        if who is None:
            return  # nobody to attribute it to: an unauthenticated request is not accounted
        usage = call.usage
        record = UsageRecord(
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
            latency_ms=(time.perf_counter() - call.started) * 1000,
            status=call.status,
            outcome=call.outcome,
            stream=call.stream,
            created_at=self.clock.now(),
            error=call.error,
            session_id=call.session_id,
        )
        self.ledger.record(record)
        if call.rule is not None and self.capture is not None:  # queued, never awaited
            self.capture.capture(Pending(record, call.rule, call.body, call.answer, call.tap))

    # --- in process (ModelGateway) -------------------------------------------------------
    async def chat(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI chat completion for ``who``, accounted and budgeted like a request (AI
        approval). A model routed only to an Anthropic provider is asked in its format and the
        answer translated. Refusals raise (``BudgetExceededError``, ``NotFoundError``...); a
        provider's error answer raises ``ProviderUnavailableError`` naming its status."""
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
        answer = await self._in_process(who, dialect, request)
        return translate.from_anthropic(answer) if dialect is MESSAGES else answer

    async def embed(self, who: Attribution, body: dict[str, Any]) -> dict[str, Any]:
        """An OpenAI embeddings request for ``who`` (the indexer), accounted and budgeted like
        ``POST /openai/v1/embeddings``; the answer as the provider gave it. Refusals raise as
        ``chat``'s do."""
        return await self._in_process(who, EMBEDDINGS, {**body})

    async def _in_process(
        self, who: Attribution, dialect: Dialect, request: dict[str, Any]
    ) -> dict[str, Any]:
        """``request`` through ``_forward`` with the answer captured instead of sent."""
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
            await self._settle(call)
        status = sent.get("status", 502)
        if status >= 400:
            raise ProviderUnavailableError(call.error or "the provider failed", status=status)
        answer: dict[str, Any] = msgspec.json.decode(sent["body"])
        return answer


# --- helpers ------------------------------------------------------------------------------
def _outcome(exc: PreloopError) -> str:
    """``error`` when the gateway or the provider failed, ``refused`` when the request was."""
    return "error" if isinstance(exc, (ProviderUnavailableError, ConfigError)) else "refused"


def _allowed(who: Attribution, model: str) -> bool:
    return not who.models or any(fnmatch.fnmatchcase(model, glob) for glob in who.models)
