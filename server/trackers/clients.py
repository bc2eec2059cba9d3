"""``HttpTrackerClients``: the ``TrackerClients`` of a running server. For a ``Tracker``
record it resolves ``token_ref`` through custody (``local:``, ``env:``, ``vault:``) and builds
the adapter of its kind; the token lives only inside that client. A reference that does not
resolve is a ``TrackerError`` naming the tracker and the reference (never a value)."""

from __future__ import annotations

import httpx

from hub.errors import PreloopError, TrackerError
from hub.model_gateway.custody import Custody
from hub.trackers.ports import TrackerClient
from hub.trackers.records import Tracker, TrackerKind
from server.trackers._http import LABELS, RetryPolicy


class HttpTrackerClients:
    def __init__(
        self,
        custody: Custody,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._custody = custody
        self._retry = retry or RetryPolicy()
        self._timeout = timeout
        self._transport = transport

    async def client(self, tracker: Tracker) -> TrackerClient:
        try:
            token = await self._custody.resolve(tracker.account_id, tracker.token_ref)
        except PreloopError as exc:
            raise TrackerError(
                f"{LABELS[tracker.kind]} tracker {tracker.name}: its token {tracker.token_ref} "
                f"cannot be read from custody ({exc.message}); store it there and try again",
                tracker=tracker.kind.value,
            ) from exc
        ref, retry, timeout, transport = (
            tracker.token_ref,
            self._retry,
            self._timeout,
            self._transport,
        )
        if tracker.kind is TrackerKind.GITHUB:
            from server.trackers.github import GitHubClient

            return GitHubClient(
                tracker.base_url,
                token,
                token_ref=ref,
                retry=retry,
                timeout=timeout,
                transport=transport,
            )
        if tracker.kind is TrackerKind.GITLAB:
            from server.trackers.gitlab import GitLabClient

            return GitLabClient(
                tracker.base_url,
                token,
                token_ref=ref,
                retry=retry,
                timeout=timeout,
                transport=transport,
            )
        from server.trackers.jira import JiraClient

        return JiraClient(
            tracker.base_url,
            token,
            username=tracker.username,
            token_ref=ref,
            retry=retry,
            timeout=timeout,
            transport=transport,
        )
