"""Resources and resource templates of several upstreams, shown as one MCP server's
(docs/decisions/0006). Prompts are named ``<server>__<prompt>`` like tools (by the gateway).

    resources/list, resources/templates/list ─▶ every upstream of the caller, every page, one
        answer. A URI (or template) that one upstream lists is shown as it is; one that several
        list is shown once per upstream, qualified: ``preloop://<server>/<uri>``.
    resources/read ─▶ ``preloop://<server>/<uri>``: that server, with the URI unqualified
                   ─▶ a plain URI: the upstream that listed it, else the one with a template
                      that matches it (listing again the upstreams whose routes are unknown),
                      else the only upstream there is. Several candidates: refused as ambiguous.

Routes are what each upstream's last listing said; an upstream's ``resources/list_changed``
forgets its routes, so the next read that needs them lists it again.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import anyio

from hub.errors import ConflictError, NotFoundError, PreloopError
from server.mcp._uritemplate import matches, template_pattern

if TYPE_CHECKING:
    from server.mcp.upstream import UpstreamPool

log = logging.getLogger("preloop.mcp")

QUALIFIED = "preloop://"

Fetch = Callable[[str], Awaitable[list[dict[str, Any]]]]


def qualify(server: str, uri: str) -> str:
    """``preloop://<server>/<uri>``: a URI (or template) of one named upstream."""
    return f"{QUALIFIED}{quote(server, safe='')}/{uri}"


def unqualify(uri: str) -> tuple[str, str] | None:
    """(server, upstream URI) for a qualified URI; None for any other URI."""
    if not uri.startswith(QUALIFIED):
        return None
    server, slash, rest = uri[len(QUALIFIED) :].partition("/")
    if not server or not slash or not rest:
        return None
    return unquote(server), rest


def shown(listed: dict[str, list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """Every server's items in server order; ``key`` (``uri``, ``uriTemplate``) qualified
    where more than one server lists the same value."""
    counts = Counter(str(item.get(key)) for items in listed.values() for item in items)
    result: list[dict[str, Any]] = []
    for server, items in listed.items():
        for item in items:
            value = str(item.get(key))
            result.append(item if counts[value] == 1 else {**item, key: qualify(server, value)})
    return result


class UpstreamContent:
    """Lists the caller's upstreams' resources and templates, and routes reads by URI."""

    def __init__(self, pool: UpstreamPool) -> None:
        self._pool = pool
        self._uris: dict[str, frozenset[str]] = {}  # server -> the URIs it listed last
        self._templates: dict[str, tuple[re.Pattern[str], ...]] = {}  # server -> its templates

    async def list_resources(self, servers: list[str]) -> dict[str, list[dict[str, Any]]]:
        listed = await self.gather(servers, self._pool.list_resources, "resources")
        for server, items in listed.items():
            self._uris[server] = frozenset(str(item.get("uri")) for item in items)
        return listed

    async def list_templates(self, servers: list[str]) -> dict[str, list[dict[str, Any]]]:
        listed = await self.gather(
            servers, self._pool.list_resource_templates, "resource templates"
        )
        for server, items in listed.items():
            self._templates[server] = tuple(
                template_pattern(str(item.get("uriTemplate", ""))) for item in items
            )
        return listed

    async def list_prompts(self, servers: list[str]) -> dict[str, list[dict[str, Any]]]:
        return await self.gather(servers, self._pool.list_prompts, "prompts")

    def forget(self, server: str) -> None:
        """Drop ``server``'s routes (its resources changed)."""
        self._uris.pop(server, None)
        self._templates.pop(server, None)

    async def route(self, uri: str, servers: list[str]) -> tuple[str, str]:
        """(server, the URI to send it) for a resource read among ``servers``; NotFoundError
        or ConflictError (with what to do instead) when there is not exactly one."""
        qualified = unqualify(uri)
        if qualified is not None:
            if qualified[0] not in servers:
                raise NotFoundError(
                    f"Unknown resource {uri!r}: there is no MCP server {qualified[0]!r}."
                )
            return qualified
        candidates = self._candidates(uri, servers)
        stale = [s for s in servers if s not in self._uris or s not in self._templates]
        if not candidates and stale:
            await self.list_resources(stale)
            await self.list_templates(stale)
            candidates = self._candidates(uri, servers)
        if not candidates and len(servers) == 1:
            candidates = servers  # the only upstream there is answers for itself
        if len(candidates) == 1:
            return candidates[0], uri
        if not candidates:
            raise NotFoundError(
                f"Unknown resource {uri!r}: no MCP server behind Preloop lists it or a "
                "template that matches it."
            )
        choices = ", ".join(qualify(server, uri) for server in candidates)
        raise ConflictError(
            f"Resource {uri!r} is served by several MCP servers; read one of: {choices}"
        )

    def _candidates(self, uri: str, servers: list[str]) -> list[str]:
        listed = [s for s in servers if uri in self._uris.get(s, ())]
        if listed:
            return listed
        return [s for s in servers if any(matches(p, uri) for p in self._templates.get(s, ()))]

    @staticmethod
    async def gather(
        servers: list[str], fetch: Fetch, what: str
    ) -> dict[str, list[dict[str, Any]]]:
        """``fetch`` from every server at once; a server that fails is left out (and logged)."""
        found: dict[str, list[dict[str, Any]]] = {}

        async def one(server: str) -> None:
            try:
                found[server] = await fetch(server)
            except PreloopError as exc:
                log.warning("MCP server %s: cannot list its %s: %s", server, what, exc.message)

        async with anyio.create_task_group() as tg:
            for server in servers:
                tg.start_soon(one, server)
        return {server: found[server] for server in servers if server in found}
