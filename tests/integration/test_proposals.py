"""居民提案制 on real databases: review, support up to the threshold, the vote, the result, the decision and the
accountability record, driven by durable timers on a fake clock; with real concurrent sessions on PostgreSQL, 200
residents supporting at the threshold open exactly one vote, and one resident tapping twice votes once."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.errors import DomainError, Forbidden
from bot.domain.media import PhotoRefused
from bot.domain.proposals import Choice, Draft, ProposalError, ProposalStatus, Rules
from storage.proposal_models import ProposalRow, ProposalSupportRow, ProposalVoteRow
from storage.uow import SqlUnitOfWork
from tests.support.pg import truncate_all
from tests.support.points import ORGANISER
from tests.support.proposals import DRAFT, PWorld, make_pworld
from tests.support.reports import jpeg_with_gps

S = ProposalStatus
AUTHOR = 5000


@pytest.fixture
async def pg(pg_database: str) -> AsyncIterator[PWorld]:
    await truncate_all(pg_database)
    world = await make_pworld(pg_database, pool_size=10)
    yield world
    await world.aclose()


@pytest.fixture
async def pw(db_url: str) -> AsyncIterator[PWorld]:
    world = await make_pworld(db_url)
    await world.residents([AUTHOR, 101, 102, 103, 104])
    yield world
    await world.aclose()


async def _gather(calls: Sequence[Awaitable[object]]) -> list[object]:
    """Results in call order; anything but a domain refusal fails the test (deadlock, "database is locked")."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DomainError)]
    assert not unexpected, unexpected[:3]
    return list(results)


def _stored(path: str) -> bool:
    return Path(path).is_file()


def _refusal(results: list[object], code: str) -> int:
    return sum(1 for r in results if isinstance(r, ProposalError) and r.code == code)


# ---- concurrency (PostgreSQL) -----------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_support_200_at_once_at_the_threshold_opens_the_vote_exactly_once(pg: PWorld) -> None:
    people = list(range(1, 201))
    await pg.residents([AUTHOR, *people])
    proposal = await pg.collecting(AUTHOR, threshold=150)
    results = await _gather([pg.proposals.support(p, proposal.id) for p in people])
    opened = [r for r in results if not isinstance(r, BaseException) and r.vote_opened]  # type: ignore[union-attr]
    assert len(opened) == 1
    after = await pg.get(proposal.id)
    assert after.status is S.VOTING and after.supports == 150
    assert await pg.count(ProposalSupportRow, proposal.id) == 150
    assert _refusal(results, "not_collecting") == 50  # the vote had opened: their taps changed nothing
    # One set of notices: each of the 150 supporters and the author, once.
    assert await pg.outbox("proposals/vote_open") == 151
    assert await pg.outbox("proposals/vote_open", AUTHOR) == 1


@pytest.mark.postgres
async def test_support_200_at_once_with_threshold_200_opens_once_and_counts_all(pg: PWorld) -> None:
    people = list(range(1, 201))
    await pg.residents([AUTHOR, *people])
    proposal = await pg.collecting(AUTHOR, threshold=200)
    results = await _gather([pg.proposals.support(p, proposal.id) for p in people])
    assert sum(1 for r in results if not isinstance(r, BaseException) and r.vote_opened) == 1  # type: ignore[union-attr]
    after = await pg.get(proposal.id)
    assert (after.status, after.supports) == (S.VOTING, 200)
    assert await pg.outbox("proposals/vote_open") == 201


@pytest.mark.postgres
async def test_vote_twice_at_once_by_one_resident_counts_one_vote(pg: PWorld) -> None:
    people = list(range(1, 31))
    await pg.residents([AUTHOR, *people])
    proposal = await pg.collecting(AUTHOR, threshold=3)
    for p in people[:3]:
        await pg.proposals.support(p, proposal.id)
    # Everyone votes at once, and resident 1 taps "for" and "against" at the same moment.
    calls = [pg.proposals.vote(p, proposal.id, "for") for p in people]
    calls += [pg.proposals.vote(1, proposal.id, "against"), pg.proposals.vote(1, proposal.id, "for")]
    results = await _gather(calls)
    assert await pg.count(ProposalVoteRow, proposal.id) == 30
    assert _refusal(results, "already_voted") == 2
    pg.clock.advance(days=7, seconds=1)
    await pg.run_jobs()
    closed = await pg.get(proposal.id)
    assert closed.status is S.VOTED and closed.tally.total == 30


@pytest.mark.postgres
async def test_two_workers_closing_the_same_vote_publish_one_result(pg: PWorld) -> None:
    await pg.residents([AUTHOR, 1, 2, 3])
    proposal = await pg.collecting(AUTHOR, threshold=3)
    for p in (1, 2, 3):
        await pg.proposals.support(p, proposal.id)
    await pg.proposals.vote(1, proposal.id, "for")
    pg.clock.advance(days=8)
    done = await asyncio.gather(pg.run_jobs(), pg.run_jobs(), pg.run_jobs())
    assert sum(done) >= 1
    assert await pg.outbox("proposals/result") == 4  # author and three supporters, once each
    assert await pg.outbox("proposals/to_decide", ORGANISER) == 1


# ---- the whole way, on both backends ----------------------------------------------------------------------------


async def test_proposal_supported_voted_accepted_and_accounted_tells_supporters_each_step(pw: PWorld) -> None:
    submitted = await pw.proposals.submit(AUTHOR, DRAFT)
    assert submitted.status is S.SUBMITTED
    assert await pw.outbox("proposals/to_review", ORGANISER) == 1
    opened = await pw.proposals.review(ORGANISER, submitted.id, accept=True)
    assert (opened.status, opened.threshold) == (S.COLLECTING, 3)
    assert opened.collect_ends_at == pw.clock() + timedelta(days=30)
    assert await pw.outbox("proposals/opened", AUTHOR) == 1
    first = await pw.proposals.support(101, opened.id)
    assert not first.vote_opened and first.proposal.supports == 1
    await pw.proposals.support(102, opened.id)
    third = await pw.proposals.support(103, opened.id)
    assert third.vote_opened and third.proposal.status is S.VOTING
    assert await pw.outbox("proposals/vote_open") == 4
    await pw.proposals.vote(101, opened.id, "for")
    await pw.proposals.vote(102, opened.id, "for")
    await pw.proposals.vote(104, opened.id, "against")  # any resident of the community votes
    pw.clock.advance(days=7)
    assert await pw.run_jobs() >= 1
    voted = await pw.get(opened.id)
    assert voted.status is S.VOTED
    assert (voted.tally.for_, voted.tally.against, voted.tally.abstain) == (2, 1, 0)
    assert await pw.outbox("proposals/result") == 4 and await pw.outbox("proposals/to_decide", ORGANISER) == 1
    accepted = await pw.proposals.decide(ORGANISER, opened.id, accepted=True)
    assert accepted.status is S.ACCEPTED and accepted.budget_fen == DRAFT.cost_fen
    await pw.proposals.add_milestone(ORGANISER, opened.id, "施工队已进场，预计两周完工")
    await pw.proposals.add_expense(ORGANISER, opened.id, "12000.50 购买长椅 6 张")
    assert await pw.outbox("proposals/milestone") == 4 and await pw.outbox("proposals/expense") == 4
    found = await pw.proposals.record(opened.id)
    assert found is not None
    _, account = found
    assert [m.note for m in account.milestones] == ["施工队已进场，预计两周完工"]
    assert account.spent_fen == 1_200_050 and account.budget_fen == 5_000_000


async def test_collection_period_ends_below_threshold_expires_and_tells_supporters(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR)
    await pw.proposals.support(101, proposal.id)
    pw.clock.advance(days=29)
    await pw.run_jobs()
    assert (await pw.get(proposal.id)).status is S.COLLECTING
    pw.clock.advance(days=1)
    await pw.run_jobs()
    assert (await pw.get(proposal.id)).status is S.EXPIRED
    assert await pw.outbox("proposals/expired", 101) == 1 and await pw.outbox("proposals/expired", AUTHOR) == 1
    with pytest.raises(ProposalError) as late:
        await pw.proposals.support(102, proposal.id)
    assert late.value.code == "not_collecting"


async def test_reject_with_reason_tells_the_author_and_nobody_can_support(pw: PWorld) -> None:
    proposal = await pw.proposals.submit(AUTHOR, DRAFT)
    with pytest.raises(ProposalError) as empty:
        await pw.proposals.review(ORGANISER, proposal.id, accept=False, reason=" ")
    assert empty.value.code == "empty"
    why = "该地块属于市政绿地，社区无权改造"
    rejected = await pw.proposals.review(ORGANISER, proposal.id, accept=False, reason=why)
    assert rejected.status is S.REJECTED and rejected.reason == why
    assert await pw.outbox("proposals/rejected", AUTHOR) == 1
    with pytest.raises(ProposalError):
        await pw.proposals.support(101, proposal.id)
    with pytest.raises(ProposalError) as again:
        await pw.proposals.review(ORGANISER, proposal.id, accept=True)
    assert again.value.code == "wrong_state"


async def test_notice_in_quiet_hours_waits_until_they_end(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR)
    pw.clock.now = pw.clock.now.replace(hour=15)  # 23:00 in Shanghai
    await pw.proposals.support(101, proposal.id)
    await pw.proposals.support(102, proposal.id)
    await pw.proposals.support(103, proposal.id)
    held = await pw.held_until("proposals/vote_open", 101)
    assert held is not None and held.astimezone(pw.world.clock.now.tzinfo).hour == 0  # 08:00 in Shanghai


async def test_photo_sweep_deletes_old_unused_proposal_photos_and_keeps_used_ones(db_url: str, tmp_path: Path) -> None:
    world = await make_pworld(db_url, media=tmp_path / "media")
    try:
        await world.residents([AUTHOR])
        assert world.photos is not None
        keys = []
        for n in range(3):
            world.files.add(f"f{n}", jpeg_with_gps(colour=(n * 60, 60, 40)))
            keys.append(await world.proposals.add_photo(f"f{n}"))
        used, milestone_photo, orphan = keys
        assert used.startswith("proposals/")
        submitted = await world.proposals.submit(AUTHOR, replace(DRAFT, photo=used))
        await world.proposals.set_rules(ORGANISER, Rules(1, 30, 7))
        await world.proposals.review(ORGANISER, submitted.id, accept=True)
        await world.proposals.support(AUTHOR, submitted.id)
        world.clock.advance(days=7)
        await world.run_jobs()
        await world.proposals.decide(ORGANISER, submitted.id, accepted=True)
        await world.proposals.add_milestone(ORGANISER, submitted.id, "开工了", milestone_photo)
        old = (world.clock() - timedelta(days=3)).timestamp()
        for key in keys:
            os.utime(world.photos.locate(key), (old, old))
        assert await world.proposals.sweep_orphan_photos(world.clock()) == 1
        assert [_stored(world.photos.locate(k)) for k in keys] == [True, True, False]
        assert orphan not in (used, milestone_photo)
    finally:
        await world.aclose()


async def test_photo_that_is_not_an_image_is_refused(db_url: str, tmp_path: Path) -> None:
    world = await make_pworld(db_url, media=tmp_path / "media")
    try:
        world.files.add("doc", b"%PDF-1.4 not a photo")
        with pytest.raises(PhotoRefused) as refused:
            await world.proposals.add_photo("doc")
        assert refused.value.context["reason"] == "not_image"
        with pytest.raises(PhotoRefused) as large:
            await world.proposals.add_photo("doc", size=50 * 1024 * 1024)
        assert large.value.context["reason"] == "too_large"
    finally:
        await world.aclose()


async def test_deleting_data_unlinks_the_author_and_the_organiser_but_keeps_the_record(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR)
    await pw.proposals.support(101, proposal.id)
    assert await pw.world.residents.delete(AUTHOR)
    assert await pw.world.residents.delete(ORGANISER)
    async with SqlUnitOfWork(pw.world.sessions) as uow:
        assert uow.session is not None
        row = await uow.session.get(ProposalRow, proposal.id)
        assert row is not None and row.author_id is None and row.reviewed_by is None
        assert (row.title, row.supports, row.status) == (DRAFT.title, 1, "collecting")


# ---- bad input changes nothing -----------------------------------------------------------------------------------


async def test_support_twice_is_refused_and_counts_once(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR)
    await pw.proposals.support(101, proposal.id)
    with pytest.raises(ProposalError) as twice:
        await pw.proposals.support(101, proposal.id)
    assert twice.value.code == "already_supported"
    assert (await pw.get(proposal.id)).supports == 1


async def test_support_or_vote_from_another_community_is_refused(pw: PWorld) -> None:
    await pw.residents([500], community="other")
    proposal = await pw.collecting(AUTHOR)
    with pytest.raises(ProposalError) as other:
        await pw.proposals.support(500, proposal.id)
    assert other.value.code == "other_community"
    with pytest.raises(ProposalError):
        await pw.proposals.view(500, proposal.id)
    assert (await pw.get(proposal.id)).supports == 0


async def test_vote_after_the_window_or_before_it_is_refused(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR)
    with pytest.raises(ProposalError) as early:
        await pw.proposals.vote(101, proposal.id, "for")
    assert early.value.code == "vote_closed"
    for p in (101, 102, 103):
        await pw.proposals.support(p, proposal.id)
    pw.clock.advance(days=7)
    with pytest.raises(ProposalError) as late:  # the window has closed, even before the job ran
        await pw.proposals.vote(101, proposal.id, "for")
    assert late.value.code == "vote_closed"
    await pw.run_jobs()
    with pytest.raises(ProposalError):
        await pw.proposals.vote(101, proposal.id, "for")
    assert (await pw.get(proposal.id)).tally.total == 0


async def test_vote_with_an_unknown_choice_is_refused(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR, threshold=1)
    await pw.proposals.support(101, proposal.id)
    with pytest.raises(ProposalError) as bad:
        await pw.proposals.vote(101, proposal.id, "maybe")
    assert bad.value.code == "bad_choice"
    assert await pw.count(ProposalVoteRow, proposal.id) == 0


async def test_resident_calling_organiser_actions_is_refused_and_nothing_changes(pw: PWorld) -> None:
    proposal = await pw.proposals.submit(AUTHOR, DRAFT)
    with pytest.raises(Forbidden):
        await pw.proposals.review(AUTHOR, proposal.id, accept=True)
    with pytest.raises(Forbidden):
        await pw.proposals.set_rules(101, Rules(1, 1, 1))
    assert (await pw.get(proposal.id)).status is S.SUBMITTED
    opened = await pw.proposals.review(ORGANISER, proposal.id, accept=True)
    assert opened.threshold == 3


def test_draft_with_a_too_long_title_or_bad_cost_is_refused() -> None:
    with pytest.raises(ProposalError) as long:
        Draft("口" * 61, DRAFT.description, 100, "garden")
    assert long.value.code == "too_long"
    with pytest.raises(ProposalError) as negative:
        Draft(DRAFT.title, DRAFT.description, -1, "garden")
    assert negative.value.code == "cost_negative"
    with pytest.raises(ProposalError) as absurd:
        Draft(DRAFT.title, DRAFT.description, 10**13, "garden")
    assert absurd.value.code == "cost_absurd"


async def test_milestone_before_acceptance_is_refused(pw: PWorld) -> None:
    proposal = await pw.collecting(AUTHOR)
    with pytest.raises(ProposalError) as early:
        await pw.proposals.add_milestone(ORGANISER, proposal.id, "开工")
    assert early.value.code == "not_accepted_yet"
    with pytest.raises(ProposalError) as money:
        await pw.proposals.add_expense(ORGANISER, proposal.id, "-5 退款")
    assert money.value.code == "cost_negative"


async def test_rules_set_by_an_organiser_apply_to_the_next_proposal(pw: PWorld) -> None:
    rules, _ = await pw.proposals.rules_of(101)
    assert rules == Rules(3, 30, 7)
    await pw.proposals.set_rules(ORGANISER, Rules(2, 10, 3))
    proposal = await pw.collecting(AUTHOR)
    assert proposal.threshold == 2
    assert proposal.collect_ends_at == pw.clock() + timedelta(days=10)
    await pw.proposals.support(101, proposal.id)
    outcome = await pw.proposals.support(102, proposal.id)
    assert outcome.proposal.vote_ends_at == pw.clock() + timedelta(days=3)
    assert Choice.FOR.value == "for"
