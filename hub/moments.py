"""A moment as a person types it: an ISO 8601 time with its zone, or an age before now.

    moment("2026-11-24T08:00:00Z", now)   # that time
    moment("2h", now)                     # now - 2 hours (s, m, h, d)

The CLI's ``--since``/``--until`` and the dashboard's filter bars read times the same way.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from hub.errors import ValidationError

_AGE = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def moment(value: str, now: datetime, *, field: str | None = None) -> datetime:
    """``value`` as a time: an age (``30m``, ``2h``, ``7d``) counts back from ``now``; an ISO
    time must name its zone. Anything else is a :class:`ValidationError` naming ``field``."""
    text = value.strip()
    age = _AGE.match(text)
    if age:
        return now - timedelta(**{_UNITS[age.group(2)]: int(age.group(1))})
    try:
        found = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(
            f"{value!r}: give an ISO time or an age like 30m, 2h, 7d.", field=field
        ) from exc
    if found.tzinfo is None:
        raise ValidationError(f"{value!r}: give the time zone too, e.g. {text}Z.", field=field)
    return found
