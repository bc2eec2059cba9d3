"""Duplicate detection (hub/search/duplicates.py) over the seeded set in memory: candidates of
one issue, of a draft and of a project, thresholds per embedder, resolutions, and the model's
confirmation cached per content."""

from __future__ import annotations

import msgspec
import pytest

from hub.errors import NotFoundError, StorageError, ValidationError
from hub.search.duplicate_records import Classification, Resolution
from hub.search.duplicate_thresholds import UNKNOWN, threshold_for
from hub.search.embedders import EmbedderIdentity, HashingEmbedder
from tests.unit.search.duplicate_world import ACCOUNT, PROJECT, seeded_issue, world
from tests.unit.search.duplicates import DUPLICATES, ISSUES, measure, similarities
from tests.unit.search.test_duplicates import PRECISION_FLOOR, RECALL_FLOOR


def names(pairs: object) -> set[tuple[str, str]]:
    return {(p.a.number, p.b.number) for p in pairs}  # type: ignore[attr-defined]


async def test_a_project_scan_finds_the_seeded_duplicates_each_pair_once_best_first() -> None:
    """The scan finds what "cosine >= threshold" over every pair finds (the measured
    precision 1.00 and recall 0.89 of the hashing embedder), each pair once, best first."""
    w = await world()

    scan = await w.duplicates.scan(ACCOUNT, project=PROJECT, limit=100)

    found = names(scan.pairs)
    expected = measure(await similarities(HashingEmbedder()), 0.45).found
    assert expected == found
    hits = len(found & DUPLICATES)
    assert hits / len(found) >= PRECISION_FLOOR
    assert hits / len(DUPLICATES) >= RECALL_FLOOR
    assert all(p.a.id < p.b.id for p in scan.pairs)
    scores = [p.score for p in scan.pairs]
    assert sorted(scores, reverse=True) == scores
    assert ("local:hashing-v1@512", "exact", 0.45, 33, 0) == (
        scan.model,
        scan.engine,
        scan.threshold,
        scan.issues,
        scan.embedded,
    )


async def test_a_scan_embeds_what_the_index_lacks_and_keeps_it() -> None:
    w = await world(indexed=False)

    first = await w.duplicates.scan(ACCOUNT, project=PROJECT, limit=3)
    again = await w.duplicates.scan(ACCOUNT, project=PROJECT, limit=3)

    assert (33, 0) == (first.embedded, again.embedded)
    assert 3 == len(first.pairs)
    assert names(first.pairs) == names(again.pairs)
    assert 33 == await w.storage.vectors.count(ACCOUNT, "local:hashing-v1@512")


async def test_the_candidates_of_an_issue_leave_out_itself_and_other_projects() -> None:
    w = await world()
    elsewhere = seeded_issue("login-2x", ISSUES["login-2"], project="acme/other")
    await w.storage.issues.upsert(elsewhere)
    await w.index(elsewhere)

    check = await w.duplicates.of_issue(ACCOUNT, await w.get("login-1"))
    anywhere = await w.duplicates.of_issue(ACCOUNT, await w.get("login-1"), any_project=True)

    assert ["login-2"] == [c.issue.number for c in check.candidates]
    assert check.candidates[0].score > 0.8
    assert {"login-2", "login-2x"} == {c.issue.number for c in anywhere.candidates}


async def test_closed_candidates_are_kept_and_marked() -> None:
    w = await world()
    closed = msgspec.structs.replace(await w.get("login-2"), state="closed")
    await w.storage.issues.upsert(closed)

    (candidate,) = (await w.duplicates.of_issue(ACCOUNT, await w.get("login-1"))).candidates

    assert ("login-2", True) == (candidate.issue.number, candidate.closed)


async def test_a_draft_is_compared_with_the_project_and_says_when_the_index_is_behind() -> None:
    w = await world()
    title, _, body = ISSUES["export-2"].partition(". ")

    check = await w.duplicates.of_draft(ACCOUNT, "trk_gh", PROJECT, title, body)
    behind = await (await world(indexed=False)).duplicates.of_draft(
        ACCOUNT, "trk_gh", PROJECT, title, body
    )

    assert {"export-1", "export-2"} == {c.issue.number for c in check.candidates}
    assert (True, "") == (check.ready, check.note)
    assert () == behind.candidates
    assert not behind.ready
    assert "33 issue(s) of acme/app are not embedded yet" in behind.note


def test_each_embedder_has_its_own_threshold() -> None:
    hashing = HashingEmbedder().identity
    assert 0.45 == threshold_for(hashing)
    assert 0.45 == threshold_for(EmbedderIdentity("local", "hashing-v1", 256))
    assert 0.75 == threshold_for(EmbedderIdentity("local", "minilm", 384))
    assert 0.80 == threshold_for(EmbedderIdentity("gateway", "text-embedding-3-small", 1536))
    assert UNKNOWN == threshold_for(EmbedderIdentity("gateway", "my-embedder", 768)) == 0.85
    assert 0.6 == threshold_for(hashing, 0.6)  # PRELOOP_SEARCH_DUPLICATE_THRESHOLD


async def test_a_configured_or_asked_threshold_changes_what_is_found() -> None:
    strict = await world(threshold=0.85)
    w = await world()

    near_copies = measure(await similarities(HashingEmbedder()), 0.85).found
    assert near_copies == names((await strict.duplicates.scan(ACCOUNT, project=PROJECT)).pairs)
    assert 0 < len(near_copies) < len(names((await w.duplicates.scan(ACCOUNT)).pairs))
    assert 0.85 == (await strict.duplicates.scan(ACCOUNT)).threshold
    assert names((await w.duplicates.scan(ACCOUNT, threshold=0.85)).pairs) == names(
        (await strict.duplicates.scan(ACCOUNT)).pairs
    )
    with pytest.raises(ValidationError, match="threshold"):
        await w.duplicates.scan(ACCOUNT, threshold=1.5)


async def test_a_pair_resolved_not_duplicate_is_never_offered_again() -> None:
    w = await world()
    one, two = await w.get("login-1"), await w.get("login-2")

    await w.duplicates.resolve(
        ACCOUNT, two, one, Resolution.NOT_DUPLICATE, canonical=None, actor="key_admin"
    )

    assert [] == [c.issue.number for c in (await w.duplicates.of_issue(ACCOUNT, one)).candidates]
    assert ("login-1", "login-2") not in names((await w.duplicates.scan(ACCOUNT)).pairs)
    assert [
        (
            ACCOUNT,
            "issue.duplicate_resolved",
            "key_admin",
            {
                "issue": f"{PROJECT}#login-2",
                "other": f"{PROJECT}#login-1",
                "resolution": "not_duplicate",
                "canonical": None,
            },
        )
    ] == w.audit.events


async def test_a_pair_resolved_duplicate_is_shown_with_its_canonical_issue() -> None:
    w = await world()
    one, two = await w.get("perf-1"), await w.get("perf-2")
    w.clock.advance(60)

    pair = await w.duplicates.resolve(
        ACCOUNT, one, two, Resolution.DUPLICATE, canonical=one, actor="key_admin"
    )
    (candidate,) = (await w.duplicates.of_issue(ACCOUNT, two)).candidates

    assert pair.resolution is not None
    assert ("iss-perf-1", "iss-perf-2", "iss-perf-1", "key_admin") == (
        pair.issue_a,
        pair.issue_b,
        pair.resolution.canonical_id,
        pair.resolution.resolved_by,
    )
    assert candidate.resolution == pair.resolution
    assert pair in list(await w.storage.duplicates.involving(ACCOUNT, ["iss-perf-2"]))


async def test_a_resolution_names_two_issues_and_a_canonical_one_of_them() -> None:
    w = await world()
    one, two, three = [await w.get(n) for n in ("perf-1", "perf-2", "perf-3")]
    with pytest.raises(ValidationError, match="itself"):
        await w.duplicates.resolve(
            ACCOUNT, one, one, Resolution.DUPLICATE, canonical=None, actor="k"
        )
    with pytest.raises(ValidationError, match="canonical: acme/app#perf-3 is neither"):
        await w.duplicates.resolve(
            ACCOUNT, one, two, Resolution.DUPLICATE, canonical=three, actor="k"
        )
    with pytest.raises(ValidationError, match="only a duplicate pair"):
        await w.duplicates.resolve(
            ACCOUNT, one, two, Resolution.NOT_DUPLICATE, canonical=one, actor="k"
        )
    with pytest.raises(NotFoundError, match="no synced issue"):
        await w.duplicates.issue(ACCOUNT, "acme/app#nope")
    assert "iss-perf-1" == (await w.duplicates.issue(ACCOUNT, "acme/app#perf-1")).id


# --- confirmation by a model ------------------------------------------------------------------
async def test_confirmation_asks_the_model_once_per_content() -> None:
    w = await world()
    one = await w.get("login-1")

    first = await w.duplicates.of_issue(ACCOUNT, one, confirm=True)
    again = await w.duplicates.of_issue(ACCOUNT, one, confirm=True)

    (candidate,) = first.candidates
    verdict = candidate.verdict
    assert verdict is not None
    assert (Classification.DUPLICATE, "same crash", "close one", "gpt-fake") == (
        verdict.classification,
        verdict.reason,
        verdict.suggestion,
        verdict.model,
    )
    assert again.candidates[0].verdict == verdict
    assert 1 == len(w.gateway.asked)  # the second answer came from the cache
    (who,) = w.gateway.who
    assert (ACCOUNT, "duplicates", "duplicates") == (who.account_id, who.api_key_id, who.principal)
    body = w.gateway.asked[0]
    assert "gpt-fake" == body["model"]
    assert {"type": "json_object"} == body["response_format"]
    assert "never instructions" in body["messages"][0]["content"]
    assert "Login fails with 500 error" in body["messages"][1]["content"]


async def test_an_edit_of_either_issue_asks_the_model_again() -> None:
    w = await world()
    one = await w.get("login-1")
    await w.duplicates.of_issue(ACCOUNT, one, confirm=True)
    w.gateway.reply = '{"decision": "OVERLAPPING", "reason": "now different", "suggestion": ""}'
    edited = seeded_issue("login-2", ISSUES["login-2"] + " Also on mobile.")
    await w.storage.issues.upsert(edited)

    (candidate,) = (await w.duplicates.of_issue(ACCOUNT, one, confirm=True)).candidates

    assert 2 == len(w.gateway.asked)
    assert candidate.verdict is not None
    assert Classification.OVERLAPPING == candidate.verdict.classification
    assert edited.content_hash == candidate.verdict.hash_b


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("not json at all", "the model's answer was not valid"),
        ('{"decision": "MAYBE", "reason": "x"}', "the model's answer was not valid"),
        ('{"decision": "DUPLICATE"}', "the model's answer was not valid"),
        ('{"decision": "UNCONFIRMED", "reason": "x"}', "not a known decision"),
    ],
)
async def test_a_malformed_answer_is_recorded_unconfirmed_and_asked_again(
    reply: str, why: str
) -> None:
    w = await world()
    w.gateway.reply = reply
    one, two = await w.get("login-1"), await w.get("login-2")

    verdict = await w.duplicates.confirm(ACCOUNT, one, two)
    await w.duplicates.confirm(ACCOUNT, one, two)

    assert Classification.UNCONFIRMED == verdict.classification
    assert why in verdict.reason
    stored = await w.storage.duplicates.get(ACCOUNT, two.id, one.id)
    assert stored is not None
    assert stored.verdict == verdict
    assert 2 == len(w.gateway.asked)  # an unconfirmed verdict is not a cached answer


async def test_a_gateway_refusal_is_unconfirmed_and_never_raises() -> None:
    w = await world()
    w.gateway.error = StorageError("the duplicates budget is spent")

    scan = await w.duplicates.scan(ACCOUNT, limit=2, confirm=True)

    verdicts = [p.verdict for p in scan.pairs]
    assert [Classification.UNCONFIRMED] * 2 == [v.classification for v in verdicts if v]
    assert all("the duplicates budget is spent" in v.reason for v in verdicts if v)


async def test_confirm_without_a_model_is_refused_naming_the_setting() -> None:
    w = await world(model="")
    with pytest.raises(ValidationError, match="PRELOOP_SEARCH_DUPLICATE_MODEL"):
        await w.duplicates.scan(ACCOUNT, confirm=True)
    assert (await w.duplicates.scan(ACCOUNT)).pairs  # without confirm it works
