"""How many failed logins a username, and a client address, may have in a while.

Each key (``user:<username>``, ``addr:<address>``) keeps the times of its failed logins within
the last ``window`` seconds. A key with ``limit`` failures in the window is refused until its
oldest one leaves it: ``check`` raises ``RateLimitedError`` whose ``retry_after`` says when.
A success clears the username's failures, not the address's (one address guessing many
usernames stays limited). Refused attempts are not counted (they prove nothing), so waiting
out the window always works.

The counters live in this process (docs/decisions/0093): with several replicas an attacker
gets each replica's allowance; the slow hash (hub/passwords.py) stays the bound on guessing.
At most ``max_keys`` keys are kept, the least recently failed going first, so random
usernames cannot grow memory without bound.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from datetime import datetime, timedelta

from hub.clock import Clock
from hub.errors import RateLimitedError

DEFAULT_MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(
        self,
        clock: Clock,
        *,
        per_username: int,
        per_address: int,
        window_seconds: int,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self._clock = clock
        self._limits = {"user": per_username, "addr": per_address}
        self._window = timedelta(seconds=window_seconds)
        self._max_keys = max_keys
        self._failures: OrderedDict[str, deque[datetime]] = OrderedDict()

    def check(self, username: str, address: str) -> None:
        """``RateLimitedError`` when either key reached its limit (the longer wait wins)."""
        now = self._clock.now()
        waits = [
            wait
            for key, limit in self._keys(username, address)
            if (wait := self._wait(key, limit, now)) > 0
        ]
        if waits:
            seconds = math.ceil(max(waits))
            raise RateLimitedError(
                f"too many failed logins; try again in {seconds} s", retry_after=seconds
            )

    def failed(self, username: str, address: str) -> None:
        now = self._clock.now()
        for key, _ in self._keys(username, address):
            times = self._failures.pop(key, None) or deque()
            times.append(now)
            self._failures[key] = times  # most recently failed last
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._failures.pop(f"user:{username}", None)

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        keys = [(f"user:{username}", self._limits["user"])]
        if address:
            keys.append((f"addr:{address}", self._limits["addr"]))
        return keys

    def _wait(self, key: str, limit: int, now: datetime) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self._window:
            times.popleft()
        if not times:
            del self._failures[key]
            return 0.0
        if len(times) < limit:
            return 0.0
        return (times[-limit] + self._window - now).total_seconds()
