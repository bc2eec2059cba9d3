"""The channels' inbound handlers, mounted: each route hands a request's raw pieces to the
handler in ``bots/`` and sends its :class:`~bots._replies.Reply` back. Nothing here decides.

    POST /slack/events            bots.slack.interactions.SlackEvents (404 when Slack's HTTP
                                  mode is off: no bot token or no signing secret)
    POST /mattermost/actions      bots.mattermost.MattermostActions (404 without Mattermost)
    GET  /email/links/{token}     bots.email.EmailLinkPages.confirm
    POST /email/links/{token}     bots.email.EmailLinkPages.decide

The handlers are built once per app from the hub's services (:func:`channel_inbound`, at
start-up in ``server/app.py``). With ``server/bootstrap.py`` and ``server/worker.py``, this is
the only server module that imports ``bots`` (import contract in pyproject.toml;
docs/decisions/0076-channel-identity-decisions.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router, get, post, route
from litestar.params import FromPath

from bots._replies import Reply, text_reply
from bots.email.pages import EmailLinkPages
from bots.mattermost.actions import MattermostActions, not_configured
from bots.mattermost.tokens import ActionSigner
from server.hub_services import Hub

if TYPE_CHECKING:
    from bots.slack.interactions import SlackEvents


@dataclass(frozen=True)
class ChannelInbound:
    """The inbound handlers of one app (``app.state.channels``)."""

    email: EmailLinkPages
    mattermost: MattermostActions | None = None
    slack: SlackEvents | None = None


def channel_inbound(hub: Hub) -> ChannelInbound:
    """The handlers, bound to ``hub``'s services; a channel that is off has none."""
    decisions, storage, settings = hub.channel_decisions, hub.storage, hub.settings
    slack: SlackEvents | None = None
    if settings.slack.bot_token and settings.slack.signing_secret:
        from bots.slack.interactions import SlackEvents  # slack-bolt: only when Slack is on

        slack = SlackEvents(decisions, settings.slack)
    mattermost = (
        MattermostActions(
            decisions, ActionSigner.under(hub.links), users=storage.users, clock=hub.clock
        )
        if hub.mattermost is not None
        else None
    )
    email = EmailLinkPages(
        decisions,
        hub.links,
        used_links=storage.used_links,
        users=storage.users,
        api_keys=storage.api_keys,
        clock=hub.clock,
    )
    return ChannelInbound(email=email, mattermost=mattermost, slack=slack)


def _inbound(request: Request[Any, Any, Any]) -> ChannelInbound:
    inbound: ChannelInbound = request.app.state.channels
    return inbound


def _response(reply: Reply) -> Response[bytes]:
    return Response(
        reply.body,
        status_code=reply.status,
        media_type=reply.media_type,
        headers=dict(reply.headers),
    )


@route(
    "/slack/events",
    http_method=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
    status_code=200,
)
async def slack_events(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Slack's signed callbacks (buttons, modals, ``/preloop``)."""
    slack = _inbound(request).slack
    if slack is None:
        return _response(text_reply("Slack's HTTP mode is off on this server", 404))
    reply = await slack.handle(
        method=request.method,
        path=request.url.path,
        query=request.scope["query_string"].decode("latin-1"),
        headers=dict(request.headers),
        body=await request.body(),
    )
    return _response(reply)


@post("/mattermost/actions", include_in_schema=False, status_code=200)
async def mattermost_action(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Mattermost's button callbacks."""
    mattermost = _inbound(request).mattermost
    if mattermost is None:
        return _response(not_configured())
    return _response(await mattermost.click(await request.body()))


@get("/email/links/{token:str}", include_in_schema=False)
async def email_link_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[bytes]:
    """The confirmation page of an email link; changes nothing."""
    return _response(await _inbound(request).email.confirm(token))


@post("/email/links/{token:str}", include_in_schema=False, status_code=200)
async def email_link_decide(
    request: Request[Any, Any, Any], token: FromPath[str]
) -> Response[bytes]:
    """The confirmation page's button: decides as the link's recipient."""
    form = await request.form()
    fields = {name: str(value) for name, value in form.items() if isinstance(value, str)}
    return _response(await _inbound(request).email.decide(token, fields))


def channel_router() -> Router:
    return Router(
        path="/",
        route_handlers=[slack_events, mattermost_action, email_link_page, email_link_decide],
    )
