"""The port where duplicate pairs are kept, and its in-memory implementation.

``DuplicatePairStore``: one row per pair of issues of an account (``issue_a < issue_b``,
either order is accepted and stored ordered), holding the model's cached verdict and a
person's resolution, written separately so that neither overwrites the other. The rules of
hub/trackers/ports.py hold: scoped by ``account_id``; ``get`` answers ``None`` when absent;
datetimes aware UTC; a write naming an issue the account does not have is ``NotFoundError``;
removing an issue (its tracker) removes its pairs. The SQL store is
server/db/stores/duplicates.py; tests/contract/test_duplicate_pairs.py runs on all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import msgspec

from hub.errors import NotFoundError
from hub.search.duplicate_records import DuplicatePair, PairResolution, PairVerdict, ordered
from hub.store_rules import stored_copy
from hub.trackers.records import Issue


class DuplicatePairStore(Protocol):
    async def get(self, account_id: str, issue_a: str, issue_b: str) -> DuplicatePair | None: ...

    async def save_verdict(
        self, account_id: str, issue_a: str, issue_b: str, verdict: PairVerdict
    ) -> None:
        """Insert the pair or replace its verdict (its resolution stays)."""
        ...

    async def resolve(
        self, account_id: str, issue_a: str, issue_b: str, resolution: PairResolution
    ) -> None:
        """Insert the pair or replace its resolution (its verdict stays)."""
        ...

    async def involving(self, account_id: str, issue_ids: Sequence[str]) -> Sequence[DuplicatePair]:
        """The stored pairs with either issue among ``issue_ids``, by (issue_a, issue_b)."""
        ...


class InMemoryDuplicatePairs:
    """``issues``: the live issue table of the tracker storage it sits beside (id → issue)."""

    def __init__(self, issues: Callable[[], Mapping[str, Issue]]) -> None:
        self._issues = issues
        self._pairs: dict[tuple[str, str, str], DuplicatePair] = {}

    def _live(self) -> dict[tuple[str, str, str], DuplicatePair]:
        issues = self._issues()

        def alive(account_id: str, issue_id: str) -> bool:
            found = issues.get(issue_id)
            return found is not None and found.account_id == account_id

        self._pairs = {
            k: p for k, p in self._pairs.items() if alive(k[0], k[1]) and alive(k[0], k[2])
        }
        return self._pairs

    def _require(self, account_id: str, *issue_ids: str) -> None:
        issues = self._issues()
        for issue_id in issue_ids:
            found = issues.get(issue_id)
            if found is None or found.account_id != account_id:
                raise NotFoundError(f"issue {issue_id!r} does not exist in account {account_id!r}")

    async def get(self, account_id: str, issue_a: str, issue_b: str) -> DuplicatePair | None:
        a, b = ordered(issue_a, issue_b)
        return self._live().get((account_id, a, b))

    async def save_verdict(
        self, account_id: str, issue_a: str, issue_b: str, verdict: PairVerdict
    ) -> None:
        self._write(account_id, issue_a, issue_b, verdict=stored_copy(verdict))

    async def resolve(
        self, account_id: str, issue_a: str, issue_b: str, resolution: PairResolution
    ) -> None:
        self._write(account_id, issue_a, issue_b, resolution=stored_copy(resolution))

    def _write(
        self,
        account_id: str,
        issue_a: str,
        issue_b: str,
        **changes: PairVerdict | PairResolution,
    ) -> None:
        a, b = ordered(issue_a, issue_b)
        self._require(account_id, a, b)
        pairs = self._live()
        old = pairs.get((account_id, a, b)) or DuplicatePair(
            account_id=account_id, issue_a=a, issue_b=b
        )
        pairs[(account_id, a, b)] = msgspec.structs.replace(old, **changes)

    async def involving(self, account_id: str, issue_ids: Sequence[str]) -> Sequence[DuplicatePair]:
        wanted = set(issue_ids)
        found = [
            p
            for (acct, a, b), p in self._live().items()
            if acct == account_id and (a in wanted or b in wanted)
        ]
        return sorted(found, key=lambda p: (p.issue_a, p.issue_b))


if TYPE_CHECKING:  # mypy proves the fake keeps the port's shape
    _store: DuplicatePairStore = InMemoryDuplicatePairs(dict)
