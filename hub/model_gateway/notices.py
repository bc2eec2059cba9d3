"""Budget notices: a budget past its soft limit, told on its workflow's channels.

    BudgetService ─ audit "budget.soft_crossed" ─▶ bus "system": BudgetCrossed (once per
    budget and period) ─▶ NotificationDispatch ─▶ the budget's ``approval_workflow`` in the
    active policy ─▶ announcement_of(event, ...) ─▶ Notifier.announce on each of its channels

This module only words the announcement; which workflow, which people and the once-only
claim are the dispatch's (``hub.notification_dispatch``). The text names the budget, its scope,
period, the spend against the soft (and hard) limit and when the period resets: all of it
already in the audit row, none of it secret (no key, no token, no prompt).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from hub.events import BudgetCrossed
from hub.notifier import Announcement, Recipient


def announcement_key(event: BudgetCrossed) -> str:
    """One key per budget and period (the period by when it resets; a ``total`` budget has
    one period). At most 64 characters: it is the claim's request id."""
    period = "total" if event.resets_at is None else _compact(event.resets_at)
    return f"budget:{event.budget_id[:40]}:{period}"


def announcement_of(
    event: BudgetCrossed,
    *,
    recipients: tuple[Recipient, ...],
    channel_settings: dict[str, dict[str, str]],
) -> Announcement:
    """What the channels say about ``event``."""
    scope = event.scope if not event.scope_id else f"{event.scope} {event.scope_id}"
    limits = f"soft limit {_money(event.soft_limit)}"
    if event.hard_limit is not None:
        limits += f", hard limit {_money(event.hard_limit)}"
    resets = (
        "never (a total budget)"
        if event.resets_at is None
        else event.resets_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    )
    if event.on_soft == "ask":
        after = "Requests past the soft limit were approved for the rest of the period."
    else:
        after = "Requests go on, with a Preloop-Budget-Warning header"
        after += "; the hard limit refuses them." if event.hard_limit is not None else "."
    return Announcement(
        key=announcement_key(event),
        account_id=event.account_id,
        title=f'Budget "{event.budget}" passed its soft limit',
        lines=(
            f"Budget: {event.budget} ({scope} budget, period: {event.period})",
            f"Spent: {_money(event.spent)} of {limits}",
            f"Resets: {resets}",
            after,
        ),
        severity="warning",
        recipients=recipients,
        channel_settings=channel_settings,
    )


def _compact(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


def _money(amount: str) -> str:
    """``$8.10`` (amounts below a cent keep their digits); the text as given when it is not
    a number."""
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        return amount
    if not value.is_finite():
        return amount
    cents = value.quantize(Decimal("0.01"))
    if cents == value or abs(value) >= 1:
        return f"${cents}"
    return f"${value.normalize():f}"
