"""Duplicate detection over the synced issues (issue 16; decisions 0105, 0106).

    one issue / a draft ─▶ its vector (the stored one while its content is unchanged, else
                           embedded now) ─▶ nearest issues of the same project by cosine, at or
                           above the embedder's threshold (hub/search/duplicate_thresholds.py),
                           itself and pairs resolved ``not_duplicate`` left out
    a project            ─▶ the same for each of its issues; each pair once (a < b), best first
    confirm              ─▶ a model's verdict per pair through the gateway (confirmation.py),
                           cached per (pair, both content hashes, model): never stale
    resolve              ─▶ a person marks a pair ``duplicate`` (with the canonical issue) or
                           ``not_duplicate``; stored and audited

Vectors come from the tracker storage's vector index (``storage.vectors``, kept up to date by
the background indexer); what the index lacks is embedded here with the hub's embedder, and a
scan stores what it embedded (the indexer would have embedded the same text). Closed issues are
candidates too, marked ``closed``: filing again what was closed is the commonest duplicate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from hub.errors import NotFoundError, ValidationError
from hub.search.confirmation import Confirmer
from hub.search.duplicate_records import (
    Candidate,
    CandidatePair,
    DuplicateCheck,
    DuplicatePair,
    DuplicateScan,
    PairResolution,
    PairVerdict,
    Resolution,
    ordered,
)
from hub.search.duplicate_store import DuplicatePairStore
from hub.search.duplicate_thresholds import threshold_for
from hub.search.embedders import Embedder, Vector
from hub.search.records import IssueVector
from hub.search.text import draft_text, issue_text
from hub.trackers.records import Issue, IssueQuery

if TYPE_CHECKING:
    from hub.auditing import Auditor
    from hub.clock import Clock
    from hub.search.ports import IssueVectorStore
    from hub.trackers.ports import TrackerStorage

SCAN_ISSUES = 5000  # issues compared by one scan at most (the most recently updated)
PER_ISSUE = 10  # nearest neighbours asked per issue in a scan
EMBED_BATCH = 64
NO_INDEX = "none"
CLOSED_STATES = frozenset(
    {"closed", "merged", "done", "resolved", "cancelled", "canceled", "won't do", "rejected"}
)


def is_closed(issue: Issue) -> bool:
    category = str(issue.extra.get("status_category", "")).lower()  # Jira
    return issue.state.lower() in CLOSED_STATES or category == "done"


class Duplicates:
    """``embedder`` is read on every call (the composition root may replace the hub's);
    ``confirmer`` is ``None`` when no duplicate model is configured."""

    def __init__(
        self,
        storage: TrackerStorage,
        pairs: DuplicatePairStore,
        embedder: Callable[[], Embedder],
        clock: Clock,
        auditor: Auditor | None = None,
        *,
        threshold: float = 0.0,
        confirmer: Confirmer | None = None,
    ) -> None:
        self.storage = storage
        self.pairs = pairs
        self._embedder = embedder
        self._clock = clock
        self._auditor = auditor
        self._threshold = threshold
        self.confirmer = confirmer

    @property
    def vectors(self) -> IssueVectorStore | None:
        found: IssueVectorStore | None = getattr(self.storage, "vectors", None)
        return found

    def threshold(self, override: float | None = None) -> float:
        """``override`` when given (0: not given), else the configured or the embedder's own
        threshold."""
        if override:
            if not 0.0 < override <= 1.0:
                raise ValidationError(f"threshold: a cosine in (0, 1], not {override}")
            return override
        return threshold_for(self._embedder().identity, self._threshold)

    # --- finding issues -------------------------------------------------------------------
    async def issue(self, account_id: str, reference: str, what: str = "issue") -> Issue:
        """The issue ``reference`` names: Preloop's id, a key or a URL of the synced index."""
        found = await self.storage.issues.get(account_id, reference)
        if found is not None:
            return found
        known = [i for i in await self.storage.issues.find(account_id, reference) if not i.deleted]
        if len(known) > 1:
            raise ValidationError(
                f"{what}: {reference!r} names issues of several trackers; give Preloop's id"
            )
        if not known:
            raise NotFoundError(f"{what}: no synced issue is {reference!r} (an id, key or URL)")
        return known[0]

    # --- candidates -------------------------------------------------------------------------
    async def of_issue(
        self,
        account_id: str,
        issue: Issue,
        *,
        threshold: float | None = None,
        limit: int = 5,
        any_project: bool = False,
        confirm: bool = False,
    ) -> DuplicateCheck:
        """The issues that may duplicate ``issue``: by default in its project only."""
        embedder, minimum = self._embedder(), self.threshold(threshold)
        model = str(embedder.identity)
        vectors = self.vectors
        if vectors is None:
            return _no_index(model, minimum)
        await self._catch_up(account_id, embedder, None if any_project else issue)
        (vector,), _ = await self._vectors_of(account_id, [issue], embedder, store=True)
        stored = {
            p.issue_b if p.issue_a == issue.id else p.issue_a: p
            for p in await self.pairs.involving(account_id, [issue.id])
        }
        dismissed = [o for o, p in stored.items() if _dismissed(p)]
        where = IssueQuery(limit=limit) if any_project else _project_query(issue, limit)
        found = await vectors.nearest(
            account_id,
            model,
            vector,
            where,
            min_score=minimum,
            exclude=[issue.id, *dismissed],
        )
        candidates: list[Candidate] = []
        for other, score in found:
            pair = stored.get(other.id)
            verdict = pair.verdict if pair is not None else None
            if confirm:
                verdict = await self._confirmed(account_id, issue, other, pair)
            candidates.append(
                Candidate(
                    issue=other,
                    score=score,
                    closed=is_closed(other),
                    verdict=verdict,
                    resolution=pair.resolution if pair is not None else None,
                )
            )
        return DuplicateCheck(
            model=model, engine=vectors.engine, threshold=minimum, candidates=tuple(candidates)
        )

    async def of_draft(
        self,
        account_id: str,
        tracker_id: str,
        project: str,
        title: str,
        description: str,
        *,
        threshold: float | None = None,
        limit: int = 5,
    ) -> DuplicateCheck:
        """The synced issues of ``project`` that a new issue with this text may duplicate.
        Nothing is embedded but the draft: ``ready`` says whether the project's issues were
        all embedded (the least recently synced 200 waiting are looked at)."""
        embedder, minimum = self._embedder(), self.threshold(threshold)
        model = str(embedder.identity)
        vectors = self.vectors
        if vectors is None:
            return _no_index(model, minimum)
        (vector,) = await embedder.embed([draft_text(title, description)])
        where = IssueQuery(tracker_id=tracker_id, project=project, limit=limit)
        found = await vectors.nearest(account_id, model, vector, where, min_score=minimum)
        waiting = [
            i
            for i in await vectors.stale(model, 200)
            if (i.account_id, i.tracker_id, i.project) == (account_id, tracker_id, project)
        ]
        note = (
            f"{len(waiting)} issue(s) of {project} are not embedded yet: they were not compared"
            if waiting
            else ""
        )
        candidates = tuple(Candidate(issue=i, score=s, closed=is_closed(i)) for i, s in found)
        return DuplicateCheck(
            model=model,
            engine=vectors.engine,
            threshold=minimum,
            candidates=candidates,
            ready=not waiting,
            note=note,
        )

    async def scan(
        self,
        account_id: str,
        *,
        tracker_id: str | None = None,
        project: str | None = None,
        threshold: float | None = None,
        limit: int = 50,
        confirm: bool = False,
    ) -> DuplicateScan:
        """Every candidate pair among the issues of ``project`` (or of every project of the
        account, each compared within its own project), best first, at most ``limit``."""
        embedder, minimum = self._embedder(), self.threshold(threshold)
        model = str(embedder.identity)
        vectors = self.vectors
        if vectors is None:
            return DuplicateScan(model=model, engine=NO_INDEX, threshold=minimum)
        issues = await self.storage.issues.search(
            account_id, IssueQuery(tracker_id=tracker_id, project=project, limit=SCAN_ISSUES)
        )
        found, embedded = await self._vectors_of(account_id, issues, embedder, store=True)
        best: dict[tuple[str, str], float] = {}
        by_id = {i.id: i for i in issues}
        for issue, vector in zip(issues, found, strict=True):
            near = await vectors.nearest(
                account_id,
                model,
                vector,
                _project_query(issue, PER_ISSUE),
                min_score=minimum,
                exclude=[issue.id],
            )
            for other, score in near:
                by_id.setdefault(other.id, other)
                key = ordered(issue.id, other.id)
                best[key] = max(score, best.get(key, score))
        stored = {
            (p.issue_a, p.issue_b): p
            for p in await self.pairs.involving(account_id, sorted({i for k in best for i in k}))
        }
        kept = sorted(
            ((k, s) for k, s in best.items() if not _dismissed(stored.get(k))),
            key=lambda item: (-item[1], item[0]),
        )[: max(limit, 0)]
        pairs: list[CandidatePair] = []
        for (a, b), score in kept:
            pair = stored.get((a, b))
            verdict = pair.verdict if pair is not None else None
            if confirm:
                verdict = await self._confirmed(account_id, by_id[a], by_id[b], pair)
            pairs.append(
                CandidatePair(
                    a=by_id[a],
                    b=by_id[b],
                    score=score,
                    verdict=verdict,
                    resolution=pair.resolution if pair is not None else None,
                )
            )
        return DuplicateScan(
            model=model,
            engine=vectors.engine,
            threshold=minimum,
            pairs=tuple(pairs),
            issues=len(issues),
            embedded=embedded,
        )

    # --- confirmation and resolution -----------------------------------------------------
    async def confirm(self, account_id: str, issue: Issue, other: Issue) -> PairVerdict:
        """The model's verdict on the pair (cached while both contents are unchanged)."""
        return await self._confirmed(
            account_id, issue, other, await self.pairs.get(account_id, issue.id, other.id)
        )

    async def _confirmed(
        self, account_id: str, one: Issue, other: Issue, pair: DuplicatePair | None
    ) -> PairVerdict:
        confirmer = self.confirmer
        if confirmer is None:
            raise ValidationError(
                "confirm: no model confirms duplicates on this server (set "
                "PRELOOP_SEARCH_DUPLICATE_MODEL to a chat model the gateway routes)"
            )
        a, b = (one, other) if one.id < other.id else (other, one)
        cached = pair.verdict if pair is not None else None
        if cached is not None and cached.answers(confirmer.model, a.content_hash, b.content_hash):
            return cached
        verdict = await confirmer.verdict(account_id, a, b)
        await self.pairs.save_verdict(account_id, a.id, b.id, verdict)
        return verdict

    async def resolve(
        self,
        account_id: str,
        issue: Issue,
        other: Issue,
        resolution: Resolution,
        *,
        canonical: Issue | None,
        actor: str,
    ) -> DuplicatePair:
        """Record a person's decision on the pair (``canonical``: which of the two stays)."""
        a, b = ordered(issue.id, other.id)
        if canonical is not None:
            if resolution is Resolution.NOT_DUPLICATE:
                raise ValidationError("canonical: only a duplicate pair has a canonical issue")
            if canonical.id not in (a, b):
                raise ValidationError(
                    f"canonical: {canonical.key} is neither {issue.key} nor {other.key}"
                )
        decided = PairResolution(
            resolution=resolution,
            canonical_id=canonical.id if canonical is not None else None,
            resolved_by=actor,
            resolved_at=self._clock.now(),
        )
        await self.pairs.resolve(account_id, a, b, decided)
        if self._auditor is not None:
            await self._auditor.record(
                account_id,
                "issue.duplicate_resolved",
                actor,
                {
                    "issue": issue.key,
                    "other": other.key,
                    "resolution": resolution.value,
                    "canonical": canonical.key if canonical is not None else None,
                },
            )
        stored = await self.pairs.get(account_id, a, b)
        if stored is None:  # removed between the two statements (its tracker went)
            raise NotFoundError(f"{issue.key} or {other.key} no longer exists")
        return stored

    # --- vectors ----------------------------------------------------------------------------
    async def _catch_up(self, account_id: str, embedder: Embedder, near: Issue | None) -> int:
        """Embed and store what the index lacks of ``near``'s project (``None``: of the
        account), among the ``SCAN_ISSUES`` least recently synced issues waiting; answers how
        many were embedded."""
        vectors = self.vectors
        assert vectors is not None
        model = str(embedder.identity)
        waiting = [
            i
            for i in await vectors.stale(model, SCAN_ISSUES)
            if i.account_id == account_id
            and (near is None or (i.tracker_id, i.project) == (near.tracker_id, near.project))
        ]
        _, embedded = await self._vectors_of(account_id, waiting, embedder, store=True)
        return embedded

    async def _vectors_of(
        self, account_id: str, issues: Sequence[Issue], embedder: Embedder, *, store: bool
    ) -> tuple[list[Vector], int]:
        """Each issue's vector: the stored one when made from its current content, else
        embedded now (and stored with ``store``); answers the vectors and how many were
        embedded."""
        vectors = self.vectors
        assert vectors is not None  # the callers answer "no index" first
        model = str(embedder.identity)
        found: list[Vector | None] = []
        for issue in issues:
            kept = await vectors.get(account_id, issue.id, model)
            fresh = kept is not None and kept.content_hash == issue.content_hash
            found.append(kept.vector if kept is not None and fresh else None)
        missing = [n for n, v in enumerate(found) if v is None]
        for start in range(0, len(missing), EMBED_BATCH):
            batch = missing[start : start + EMBED_BATCH]
            made = await embedder.embed([issue_text(issues[n]) for n in batch])
            for n, vector in zip(batch, made, strict=True):
                found[n] = vector
                if store:
                    await vectors.put(_stored(issues[n], model, vector, self._clock.now()))
        return [v for v in found if v is not None], len(missing)


def _stored(issue: Issue, model: str, vector: Vector, now: datetime) -> IssueVector:
    return IssueVector(
        account_id=issue.account_id,
        issue_id=issue.id,
        model=model,
        content_hash=issue.content_hash,
        vector=tuple(vector),
        embedded_at=now,
    )


def _project_query(issue: Issue, limit: int) -> IssueQuery:
    return IssueQuery(tracker_id=issue.tracker_id, project=issue.project, limit=limit)


def _dismissed(pair: DuplicatePair | None) -> bool:
    return (
        pair is not None
        and pair.resolution is not None
        and pair.resolution.resolution is Resolution.NOT_DUPLICATE
    )


def _no_index(model: str, threshold: float) -> DuplicateCheck:
    return DuplicateCheck(
        model=model,
        engine=NO_INDEX,
        threshold=threshold,
        ready=False,
        note="this server has no vector index of issues: duplicates were not looked for",
    )
