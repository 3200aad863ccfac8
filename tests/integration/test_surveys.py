"""Satisfaction surveys on both backends: invitations and reminders once each, answering with a pause, one
submission (and one points award) per resident also under concurrency, anonymity that holds in every table, small
groups hidden, and bad input refused without changing anything."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.domain.campaigns import Audience, AudienceKind
from bot.domain.errors import Forbidden
from bot.domain.points import Reason
from bot.domain.surveys import MIN_GROUP, Question, QuestionKind, SurveyError, SurveyStatus
from bot.services.surveys import SurveyDraft
from storage.db import make_sessionmaker
from storage.messaging_models import OutboxRow
from storage.models import ResidentRow
from storage.points_models import PointsAccountRow, PointsEntryRow
from storage.schema import metadata
from storage.survey_models import SurveyParticipationRow, SurveyProgressRow, SurveyResponseRow, SurveyRow
from tests.support.campaigns import ORGANISER, organiser, populate
from tests.support.points import FakeClock

SUGGESTION = "东门绿化带的长椅坏了，请尽快修理"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 12, 7, 2, 0, tzinfo=UTC))  # Monday 10:00 in Shanghai


@pytest.fixture
async def app(db_url: str, clock: FakeClock) -> AsyncIterator[App]:
    app = await build_app(Settings(database=DatabaseSettings(url=db_url)), clock=clock, bot_username="sicheng_bot")
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await organiser(app, clock())
    yield app
    await app.aclose()


async def demo_id(app: App) -> int:
    found = await app.services.communities.by_code("demo")
    assert found is not None
    return found.id


async def library_survey(app: App, *, anonymous: bool = True) -> int:
    draft = app.services.surveys.from_library("twice_yearly", await demo_id(app))
    if not anonymous:
        draft = SurveyDraft(**{**draft.__dict__, "anonymous": False})
    survey = await app.services.surveys.create(ORGANISER, draft)
    return survey.id


async def answer_all(
    app: App, telegram_id: int, survey_id: int, *, score: int = 5, suggestion: str = "", answered: int = 0
) -> None:
    """Answer the library survey's questions (after the first ``answered`` ones) as a resident's taps would."""
    surveys = app.services.surveys
    for key in ("env", "green", "food", "order", "handling")[answered:]:
        await surveys.answer(telegram_id, survey_id, key, score)
    await surveys.answer(telegram_id, survey_id, "aware", 0)
    await surveys.toggle(telegram_id, survey_id, "joined", 0)
    await surveys.toggle(telegram_id, survey_id, "joined", 2)
    await surveys.confirm(telegram_id, survey_id, "joined")
    if suggestion:
        await surveys.answer(telegram_id, survey_id, "suggest", suggestion)
    else:
        await surveys.skip(telegram_id, survey_id, "suggest")


async def count(app: App, model: type, *where: object) -> int:
    async with make_sessionmaker(app.engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def survey_points(app: App, telegram_id: int) -> int:
    async with make_sessionmaker(app.engine)() as session:
        query = (
            select(func.coalesce(func.sum(PointsEntryRow.amount), 0))
            .join(PointsAccountRow, PointsAccountRow.id == PointsEntryRow.account_id)
            .join(ResidentRow, ResidentRow.id == PointsAccountRow.resident_id)
            .where(ResidentRow.telegram_id == telegram_id, PointsEntryRow.reason == Reason.SURVEY.value)
        )
        return int(await session.scalar(query) or 0)


async def test_library_survey_invites_each_resident_once_and_reminds_only_those_who_have_not_submitted(
    app: App, clock: FakeClock
) -> None:
    await populate(app, range(1000, 1004), clock())
    survey_id = await library_survey(app)
    invitations = OutboxRow.key.like(f"sv:{survey_id}:invitation:%")
    assert await count(app, OutboxRow, invitations) == 5  # four residents and the organiser
    await app.services.surveys.tick(clock())
    assert await count(app, OutboxRow, invitations) == 5

    await answer_all(app, 1000, survey_id)
    await app.services.surveys.submit(1000, survey_id)
    clock.advance(days=12, hours=1)  # 47 hours before it closes
    assert await app.services.surveys.tick(clock()) == 1
    assert await app.services.surveys.tick(clock()) == 0
    reminded = OutboxRow.key.like(f"sv:{survey_id}:reminder:%")
    async with make_sessionmaker(app.engine)() as session:
        chats = set((await session.scalars(select(OutboxRow.chat_id).where(reminded))).all())
    assert chats == {1001, 1002, 1003, ORGANISER}

    clock.advance(days=2)
    assert await app.services.surveys.tick(clock()) == 1
    async with make_sessionmaker(app.engine)() as session:
        assert (await session.get(SurveyRow, survey_id)).status == SurveyStatus.CLOSED.value  # type: ignore[union-attr]
    with pytest.raises(SurveyError) as refused:
        await app.services.surveys.answer(1001, survey_id, "env", 4)
    assert refused.value.code == "closed"


async def test_pause_and_resume_keeps_answers_in_the_database_and_submit_awards_points_once(
    app: App, clock: FakeClock
) -> None:
    await populate(app, [1000], clock())
    survey_id = await library_survey(app)
    surveys = app.services.surveys
    await surveys.answer(1000, survey_id, "env", 4)
    step = await surveys.answer(1000, survey_id, "green", 3)
    assert step.question is not None and step.question.key == "food" and step.number == 3

    # A new service on the same database (another worker, a restart) goes on where the resident stopped.
    again = await build_app(Settings(database=DatabaseSettings(url=str(app.engine.url.render_as_string(False)))),
                            clock=clock)  # fmt: skip
    try:
        resumed = await again.services.surveys.start(1000, survey_id)
    finally:
        await again.aclose()
    assert resumed.question is not None and resumed.question.key == "food"
    assert resumed.progress.answers == {"env": 4, "green": 3}

    await answer_all(app, 1000, survey_id, score=4, answered=2)
    review = await surveys.start(1000, survey_id)
    assert review.question is None
    changed = await surveys.change(1000, survey_id, "food")
    assert changed.question is not None and changed.question.key == "food"
    review = await surveys.answer(1000, survey_id, "food", 2)
    assert review.question is None and review.progress.answers["food"] == 2

    done = await surveys.submit(1000, survey_id)
    assert done.award is not None and done.award.credited == 3
    with pytest.raises(SurveyError) as refused:
        await surveys.submit(1000, survey_id)
    assert refused.value.code == "already_submitted"
    assert await survey_points(app, 1000) == 3
    assert await count(app, SurveyResponseRow) == 1
    results = await surveys.results(ORGANISER, survey_id)
    assert results.respondents == 1 and results.withheld  # anonymous, one respondent: their answers stay unread
    responses = await count(app, SurveyResponseRow, SurveyResponseRow.answers.is_not(None))
    assert responses == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_taps_at_once_submit_once_with_one_points_award(app: App, clock: FakeClock) -> None:
    residents = list(range(1000, 1006))
    await populate(app, residents, clock())
    survey_id = await library_survey(app)
    for telegram_id in residents:
        await answer_all(app, telegram_id, survey_id)

    async def tap(telegram_id: int) -> str:
        try:
            await app.services.surveys.submit(telegram_id, survey_id)
        except SurveyError as error:
            return error.code
        return "submitted"

    outcomes = await asyncio.gather(*(tap(t) for t in residents for _ in range(2)))
    assert sorted(outcomes) == sorted(["submitted", "already_submitted"] * len(residents))
    assert await count(app, SurveyParticipationRow) == len(residents)
    assert await count(app, SurveyResponseRow) == len(residents)
    for telegram_id in residents:
        assert await survey_points(app, telegram_id) == 3


async def test_anonymous_answers_are_linked_to_nobody_in_any_table(app: App, clock: FakeClock) -> None:
    await populate(app, [424242001], clock(), building="2")
    survey_id = await library_survey(app)
    await answer_all(app, 424242001, survey_id, score=2, suggestion=SUGGESTION)
    await app.services.surveys.submit(424242001, survey_id)
    async with make_sessionmaker(app.engine)() as session:
        resident = await session.scalar(select(ResidentRow).where(ResidentRow.telegram_id == 424242001))
        assert resident is not None
        holding_answer, naming = [], []
        for table in metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings().all():
                values = {name: "" if v is None else str(v) for name, v in row.items()}
                as_text = " ".join(values.values())
                names_them = "424242001" in as_text or any(
                    name.endswith(("resident_id", "author_id", "account_id")) and value == str(resident.id)
                    for name, value in values.items()
                )
                if table.name == "resident" and values.get("id") == str(resident.id):
                    names_them = True
                if SUGGESTION in as_text:
                    holding_answer.append(table.name)
                if names_them:
                    naming.append(table.name)
        response = (await session.execute(select(SurveyResponseRow))).scalar_one()
        progress = await session.scalar(select(func.count()).select_from(SurveyProgressRow))
        kept = (await session.execute(text("SELECT submitted_on FROM survey_response"))).scalar_one()
    assert holding_answer == ["survey_response"]  # the answer is kept …
    assert "survey_response" not in naming and "survey_progress" not in naming  # … with nobody's name on it
    assert set(naming) <= {"resident", "survey_participation", "points_account", "points_entry", "points_lot",
                           "outbox_message", "notice_preference", "audit_log"}  # fmt: skip
    assert response.resident_id is None and progress == 0
    assert len(response.id) == 32 and not response.id.isdigit()  # random, not a sequence
    assert str(kept) == "2026-12-07"  # the day, no time


async def test_building_with_fewer_than_five_respondents_shows_no_breakdown(app: App, clock: FakeClock) -> None:
    await populate(app, range(1000, 1005), clock(), building="1")
    await populate(app, range(2000, 2003), clock(), building="2")
    survey_id = await library_survey(app)
    for telegram_id, score in [*((t, 5) for t in range(1000, 1005)), *((t, 1) for t in range(2000, 2003))]:
        await answer_all(app, telegram_id, survey_id, score=score)
        await app.services.surveys.submit(telegram_id, survey_id)
    results = await app.services.surveys.results(ORGANISER, survey_id)
    assert results.respondents == 8
    shown = {g.name: g.index for g in results.buildings if g.shown}
    assert shown == {"1号楼": 100.0}
    assert results.hidden_groups == 1 and MIN_GROUP == 5
    assert "2号楼" not in results.to_json()["buildings"]
    # 5 residents × 5 ratings of 5 and 3 × 5 ratings of 1: (25 × 100 + 15 × 0) / 40
    assert results.index == 62.5 and results.satisfied_share == 62.5


async def test_bad_input_is_refused_and_changes_nothing(app: App, clock: FakeClock) -> None:
    await populate(app, [1000], clock())
    await populate(app, [3000], clock(), building="2")
    demo = await demo_id(app)
    surveys = app.services.surveys
    question = Question("q", QuestionKind.SCALE, {"zh_Hans": "满意吗？"})
    later, sooner = clock() + timedelta(days=3), clock() + timedelta(days=1)
    backwards = SurveyDraft(demo, {"zh_Hans": "测评"}, (question,), later, sooner)
    with pytest.raises(SurveyError) as refused:
        await surveys.create(ORGANISER, backwards)
    assert refused.value.code == "closes_before_opens"
    with pytest.raises(Forbidden):
        await surveys.create(1000, surveys.from_library("twice_yearly", demo))
    assert await count(app, SurveyRow) == 0

    short = Question("s", QuestionKind.TEXT, {"zh_Hans": "建议"}, required=False, limit=10)
    community = await app.services.communities.by_code("demo")
    assert community is not None
    only_1 = Audience(AudienceKind.BUILDINGS, buildings=(community.buildings[0].id,))
    draft = SurveyDraft(demo, {"zh_Hans": "测评"}, (question, short), clock(), clock() + timedelta(days=1), only_1)
    survey_id = (await surveys.create(ORGANISER, draft)).id
    for call, code in (
        (surveys.answer(1000, survey_id, "q", 6), "bad_answer"),
        (surveys.answer(1000, survey_id, "q", 0), "bad_answer"),
        (surveys.answer(1000, survey_id, "zz", 3), "no_question"),
        (surveys.answer(1000, survey_id + 99, "q", 3), "no_survey"),
        (surveys.answer(3000, survey_id, "q", 3), "no_survey"),  # building 2 is not in the audience
        (surveys.submit(1000, survey_id), "incomplete"),
    ):
        with pytest.raises(SurveyError) as refused:
            await call
        assert refused.value.code == code
    await surveys.answer(1000, survey_id, "q", 3)
    with pytest.raises(SurveyError) as refused:
        await surveys.answer(1000, survey_id, "s", "这条建议一共超过了十个字的限制")
    assert refused.value.code == "text_too_long"
    assert (await surveys.start(1000, survey_id)).progress.answers == {"q": 3}
    clock.advance(days=1)
    with pytest.raises(SurveyError) as refused:
        await surveys.answer(1000, survey_id, "s", "好")
    assert refused.value.code == "closed"
    assert await count(app, SurveyResponseRow) == 0 and await count(app, SurveyParticipationRow) == 0


async def test_deleteme_forgets_answers_in_progress_and_unnames_named_responses(app: App, clock: FakeClock) -> None:
    await populate(app, [1000], clock())
    named = await library_survey(app, anonymous=False)
    started = await library_survey(app)
    await answer_all(app, 1000, named, suggestion=SUGGESTION)
    await app.services.surveys.submit(1000, named)
    await app.services.surveys.answer(1000, started, "env", 2)
    async with make_sessionmaker(app.engine)() as session:
        assert (await session.execute(select(SurveyResponseRow.resident_id))).scalar_one() is not None
    assert await app.services.residents.delete(1000)
    async with make_sessionmaker(app.engine)() as session:
        assert (await session.execute(select(SurveyResponseRow.resident_id))).scalar_one() is None
    assert await count(app, SurveyProgressRow) == 0
    results = await app.services.surveys.results(ORGANISER, named)
    assert results.respondents == 1  # the answers still count


async def test_invitation_in_quiet_hours_waits_until_they_end(app: App, clock: FakeClock) -> None:
    await populate(app, [1000], clock())
    clock.advance(hours=13)  # 23:00 in Shanghai
    survey_id = await library_survey(app)
    async with make_sessionmaker(app.engine)() as session:
        held = await session.scalar(
            select(OutboxRow.not_before).where(OutboxRow.key == f"sv:{survey_id}:invitation:1000")
        )
    assert held == datetime(2026, 12, 8, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
