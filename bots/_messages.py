"""The messages a chat channel posted about requests, kept in ``Storage.channel_messages``.

A notifier posts a request's message and records where it is (Slack: channel id + ``ts``;
Mattermost: channel id + post id), so whichever process settles the request, a replica or
this one after a restart, finds and updates every message.

The claim in ``hub.notification_dispatch`` makes one process deliver each notice, and that process
retries a failed delivery itself. A retry must not post again when only the recording
failed: the message posted but not yet recorded is kept here, and the retry records it
instead of posting. Nothing else is kept in memory.

:func:`decider_shown` is who a settled message names, the same on every channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from hub.clock import Clock
from hub.ports import ChannelMessageStore, UserStore
from hub.records import ApprovalRequest, ChannelMessage


class PostedMessages:
    """One channel's view of ``Storage.channel_messages``."""

    def __init__(self, store: ChannelMessageStore, channel: str, clock: Clock) -> None:
        self._store = store
        self._channel = channel
        self._clock = clock
        self._unrecorded: dict[tuple[str, bool], ChannelMessage] = {}

    async def post_once(
        self,
        request: ApprovalRequest,
        *,
        escalation: bool,
        post: Callable[[], Awaitable[tuple[str, str]]],
    ) -> None:
        """Post with ``post`` (it returns the conversation and the message id) and record
        it; when an earlier attempt posted but could not record, record that one instead."""
        key = (request.id, escalation)
        message = self._unrecorded.pop(key, None)
        if message is None:
            conversation, ts = await post()
            message = ChannelMessage(
                account_id=request.account_id,
                request_id=request.id,
                channel=self._channel,
                conversation=conversation,
                ts=ts,
                created_at=self._clock.now(),
            )
        try:
            await self._store.add(message)
        except Exception:
            self._unrecorded[key] = message
            raise

    async def of(self, request: ApprovalRequest) -> Sequence[ChannelMessage]:
        """Every recorded message of ``request`` on this channel, oldest first."""
        return await self._store.list(request.account_id, request.id, self._channel)


async def decider_shown(users: UserStore, request: ApprovalRequest) -> str:
    """Who decided, as a message shows it: the name recorded with the decision; for a
    decision recorded before names were, a person's email when it is a user id, else as
    recorded ("" when nobody decided)."""
    if request.decided_by_name:
        return request.decided_by_name
    decided_by = request.decided_by or ""
    if decided_by:
        user = await users.get(request.account_id, decided_by)
        if user is not None:
            return user.email
    return decided_by
