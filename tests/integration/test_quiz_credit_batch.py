"""A closed group-quiz poll credited in batches (SQLite and PostgreSQL): each correct answer exactly once, caps kept,
nothing credited twice when the crediting is run again after a crash half way, no deadlock with single awards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

import bot.services.quiz_group as quiz_group
from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutPoll
from bot.conversation.state import MemoryStateStore
from bot.domain.points import Reason
from bot.domain.residents import Resident
from bot.services.points import Award
from storage.db import make_sessionmaker
from storage.uow import SqlUnitOfWork
from tests.support.points import FakeClock
from tests.support.quiz import finish_due_rounds, make_organiser, polls
from tests.support.transcript import FakeChat

GROUP, ORGANISER, FIRST = -100_777, 9001, 5000
VOTERS = 40  # even ones answer right: 20 correct answers, credited 7 a transaction below (3 batches)
FULL = 6  # the first FULL correct voters reached today's quiz cap (10) before the group quiz


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def app(db_url: str, clock: FakeClock) -> AsyncIterator[App]:
    settings = Settings(database=DatabaseSettings(url=db_url))
    app = await build_app(settings, clock=clock, state_store=MemoryStateStore(), bot_username="sicheng_bot")
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼")])
    yield app
    await app.aclose()


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(quiz_group, "CREDIT_BATCH", 7)


async def _residents(app: App, clock: FakeClock, count: int) -> dict[int, Resident]:
    """``count`` registered residents of demo (Telegram id → resident), written directly (fast)."""
    community = await app.services.communities.by_code("demo")
    assert community is not None
    found: dict[int, Resident] = {}
    async with SqlUnitOfWork(make_sessionmaker(app.engine)) as uow:
        for telegram_id in range(FIRST, FIRST + count):
            resident = await uow.residents.add(telegram_id, "zh_Hans", clock.now)
            await uow.residents.update(resident.id, consent_at=clock.now, community_id=community.id)
        await uow.commit()
        for telegram_id in range(FIRST, FIRST + count):
            loaded = await uow.residents.get_by_telegram_id(telegram_id)
            assert loaded is not None
            found[telegram_id] = loaded
    return found


async def _answered_poll(app: App, residents: dict[int, Resident]) -> OutPoll:
    """A one-question quiz in the linked group; every resident answers (even Telegram ids right)."""
    await make_organiser(app, ORGANISER)
    group = FakeChat(app.core, user_id=ORGANISER, chat_id=GROUP, chat_type=ChatType.SUPERGROUP, first_name="王主任")
    await group.send("/linkgroup demo")
    await group.send("/groupquiz garden 1 30")
    (poll,) = polls(group.sent)
    await app.core.poll_sent(poll, "p1", 7000)
    right = poll.correct_option_ids[0]
    for telegram_id, resident in residents.items():
        option = right if telegram_id % 2 == 0 else (right + 1) % len(poll.options)
        assert await app.services.quiz.group.vote(telegram_id, "居民", "p1", (option,), resident) is not None
    return poll


async def _rows(app: App, sql: str, **params: Any) -> list[Any]:
    async with app.engine.connect() as conn:
        return list((await conn.execute(text(sql), params)).all())


async def _group_credits(app: App) -> dict[int, list[int]]:
    """Telegram id → the amounts of their ledger entries for group answers."""
    rows = await _rows(
        app,
        "SELECT r.telegram_id, e.amount FROM points_entry e JOIN points_account a ON a.id = e.account_id "
        "JOIN resident r ON r.id = a.resident_id WHERE e.ref LIKE 'group:%' ORDER BY e.id",
    )
    found: dict[int, list[int]] = {}
    for telegram_id, amount in rows:
        found.setdefault(int(telegram_id), []).append(int(amount))
    return found


async def _quiz_today(app: App, resident_id: int) -> int:
    (row,) = await _rows(
        app,
        "SELECT COALESCE(SUM(e.amount), 0) FROM points_entry e JOIN points_account a ON a.id = e.account_id "
        "WHERE a.resident_id = :r AND e.reason = 'quiz'",
        r=resident_id,
    )
    return int(row[0])


async def _fill_cap(app: App, residents: dict[int, Resident], telegram_ids: list[int]) -> None:
    for telegram_id in telegram_ids:
        await app.services.points.award(residents[telegram_id].id, Reason.QUIZ, f"private:{telegram_id}", units=10)


async def test_credit_after_crash_half_way_credits_each_correct_answer_once_within_caps(
    app: App, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    residents = await _residents(app, clock, VOTERS)
    correct = sorted(t for t in residents if t % 2 == 0)
    full = correct[:FULL]
    await _fill_cap(app, residents, full)
    await _answered_poll(app, residents)

    # The process dies while crediting the second batch: after its ledger writes, before its commit.
    service = app.services.points
    real = service.award_many_in
    batches = 0

    async def dies_in_second_batch(uow: Any, awards: Any) -> Any:
        nonlocal batches
        batches += 1
        results = await real(uow, awards)
        if batches == 2:
            raise RuntimeError("process killed")
        return results

    monkeypatch.setattr(service, "award_many_in", dies_in_second_batch)
    clock.advance(seconds=40)
    with pytest.raises(RuntimeError, match="process killed"):
        await app.services.quiz.group.due(clock.now)
    credited = await _group_credits(app)
    # The first batch (7 answers, 6 of them of residents at their cap) committed, the second left no trace.
    assert credited == {correct[6]: [1]}

    monkeypatch.setattr(service, "award_many_in", real)
    clock.advance(seconds=5)
    await finish_due_rounds(app, clock.now)  # the next tick: late crediting picks up what is still owed
    await finish_due_rounds(app, clock.now)  # and once more: nothing left to do

    credited = await _group_credits(app)
    assert credited == {t: [1] for t in correct if t not in full}  # capped residents got nothing more
    for telegram_id in correct:
        expected = 10 if telegram_id in full else 1
        assert await _quiz_today(app, residents[telegram_id].id) == expected
    owed = await _rows(app, "SELECT COUNT(*) FROM group_quiz_answer WHERE correct AND points IS NULL")
    assert owed[0][0] == 0
    assert await app.services.points.check() == []


async def test_credit_skips_an_answer_already_in_the_ledger(app: App, clock: FakeClock) -> None:
    residents = await _residents(app, clock, 4)
    await _answered_poll(app, residents)
    async with SqlUnitOfWork(make_sessionmaker(app.engine)) as uow:
        (vote, *_) = [v for v in await uow.quiz.owed() if v.resident_id is not None]
    assert vote.resident_id is not None
    # Credited by an earlier run that died before marking the answer credited.
    key = quiz_group.vote_key(vote, vote.resident_id)
    first = await app.services.points.award(vote.resident_id, Reason.QUIZ, key, ref=f"group:{vote.quiz_id}")
    assert first.credited == 1

    clock.advance(seconds=40)
    await finish_due_rounds(app, clock.now)
    assert await _group_credits(app) == {FIRST: [1], FIRST + 2: [1]}
    assert await app.services.points.check() == []


async def test_credit_batch_counts_caps_across_its_own_awards(app: App, clock: FakeClock) -> None:
    residents = await _residents(app, clock, 2)
    alice, bob = residents[FIRST].id, residents[FIRST + 1].id
    await app.services.points.award(alice, Reason.QUIZ, "earlier", units=8)
    awards = [Award(alice, Reason.QUIZ, f"a{n}") for n in range(4)] + [Award(bob, Reason.QUIZ, "b0")]
    awards.append(Award(alice, Reason.QUIZ, "a0"))  # the same award twice in one batch
    async with app.uow() as uow:
        results = await app.services.points.award_many_in(uow, awards)
        await uow.commit()
    assert [r.credited if r else None for r in results] == [1, 1, 0, 0, 1, 0]
    assert results[2] is not None and results[2].cap == 10
    assert results[5] is not None and results[5].duplicate
    assert (await _quiz_today(app, alice), await _quiz_today(app, bob)) == (10, 1)
    assert await app.services.points.check() == []


async def test_credit_alongside_single_awards_keeps_caps_and_never_deadlocks(app: App, clock: FakeClock) -> None:
    residents = await _residents(app, clock, 24)
    correct = sorted(t for t in residents if t % 2 == 0)
    for telegram_id in correct:  # 9 of today's 10 quiz points already earned
        await app.services.points.award(residents[telegram_id].id, Reason.QUIZ, f"early:{telegram_id}", units=9)
    await _answered_poll(app, residents)
    clock.advance(seconds=40)
    # The poll's crediting (batches lock accounts in resident order) races three private answers per resident.
    singles = [
        app.services.points.award(residents[t].id, Reason.QUIZ, f"private:{t}:{n}")
        for t in reversed(correct)
        for n in range(3)
    ]
    await asyncio.wait_for(asyncio.gather(app.services.quiz.group.due(clock.now), *singles), 60)
    for telegram_id in correct:
        assert await _quiz_today(app, residents[telegram_id].id) == 10
    assert await app.services.points.check() == []


def test_vote_key_is_per_quiz_question_and_resident() -> None:
    from bot.domain.quiz_rounds import PollVote

    vote = PollVote(1, 12, "garden-3", 5001, "居*", True, None, None, datetime(2026, 12, 6))
    assert quiz_group.vote_key(vote, 77) == "g12:garden-3:77"
