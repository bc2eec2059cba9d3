"""Who is told about an approval request: its approvers, resolved to people.

A request snapshots its approvers when it opens (``user:<email or id>``, ``team:<name>``,
``role:<role>``). Notification goes to people, so each entry becomes users:

- ``user:``  that user (by email or id); an unknown user reaches nobody.
- ``team:``  every member of the team.
- ``role:``  every user who owns a usable (not revoked, not expired) API key with exactly that
  role: the people who could decide with that key (``ApprovalService`` checks the same role).
- no approvers at all: anyone with the approver or admin role may decide, so every user who
  owns a usable approver or admin key.

The user whose key made the call is never a recipient: they could not decide anyway. See
docs/decisions/0011-notification-recipients-and-email-links.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from hub.notifier import Recipient
from hub.ports import Storage
from hub.records import ApprovalRequest, Role, User

_DECIDING_ROLES = (Role.ADMIN.value, Role.APPROVER.value)


async def resolve_recipients(
    storage: Storage, request: ApprovalRequest, approvers: Sequence[str], now: datetime
) -> tuple[Recipient, ...]:
    """The people ``approvers`` name for ``request``, each once, in a stable order."""
    requester = await storage.api_keys.get(request.principal_key_id)
    return await resolve_people(
        storage,
        request.account_id,
        approvers,
        now,
        excluded_user=None if requester is None else requester.user_id,
    )


async def resolve_people(
    storage: Storage,
    account: str,
    approvers: Sequence[str],
    now: datetime,
    *,
    excluded_user: str | None = None,
) -> tuple[Recipient, ...]:
    """The people ``approvers`` name in ``account`` (no approvers: the approver and admin
    key owners), each once, in a stable order, without ``excluded_user``. Also what an
    announcement to a workflow's approvers uses (there is no requester to leave out)."""
    found: dict[str, User] = {}
    entries = list(approvers) or [f"role:{role}" for role in _DECIDING_ROLES]
    for entry in entries:
        kind, _, value = entry.partition(":")
        for user in await _users_of(storage, account, kind, value, now):
            found.setdefault(user.id, user)
    if excluded_user is not None:
        found.pop(excluded_user, None)
    return tuple(_recipient(u) for u in sorted(found.values(), key=lambda u: u.email))


async def _users_of(
    storage: Storage, account: str, kind: str, value: str, now: datetime
) -> Iterable[User]:
    if kind == "user":
        user = await storage.users.get_by_email(account, value.lower())
        if user is None:
            user = await storage.users.get(account, value)
        return () if user is None else (user,)
    if kind == "team":
        team = await storage.teams.get_by_name(account, value)
        if team is None:
            return ()
        members = [await storage.users.get(account, member) for member in team.members]
        return [m for m in members if m is not None]
    if kind == "role":
        owners = {
            key.user_id
            for key in await storage.api_keys.list(account)
            if key.role.value == value and key.user_id is not None and key.usable_at(now)
        }
        return [u for u in await storage.users.list(account) if u.id in owners]
    return ()


def _recipient(user: User) -> Recipient:
    return Recipient(
        user_id=user.id, email=user.email, name=user.name, identities=dict(user.identities)
    )
