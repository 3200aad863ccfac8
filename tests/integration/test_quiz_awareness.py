"""Awareness figures (知晓率) on a small fixture, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.domain.errors import Forbidden
from bot.services.quiz import QuizService
from content.quiz_library import load_library
from storage.uow import uow_factory
from tests.support.points import ORGANISER, World, make_world
from tests.support.quiz import play

ANNA, BEN, CHEN, DING, EVA = 5001, 5002, 5003, 5004, 5005


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    world = await make_world(db_url)
    yield world
    await world.aclose()


def quiz_service(world: World, round_size: int) -> QuizService:
    return QuizService(uow_factory(world.sessions), world.clock, world.points, load_library(), round_size=round_size)


async def test_awareness_participation_and_average_per_community_and_building(world: World) -> None:
    quiz = quiz_service(world, round_size=8)
    await world.resident(ANNA, "1")
    await world.resident(BEN, "1")
    await world.resident(CHEN, "2")
    await world.resident(DING, "2")
    await world.resident(EVA, "1", community="other")
    await play(quiz, ANNA, "garden", [True] * 8)  # knows garden
    await play(quiz, BEN, "garden", [True] * 6 + [False] * 2)  # 75%: not yet
    await play(quiz, DING, "sanitary", [True, True, True])  # takes part, too few answers to know
    await play(quiz, EVA, "garden", [True] * 8)  # another community

    report = await quiz.stats.for_community("demo")
    total = report.total
    assert (total.scope, total.registered) == (None, 4)  # the organiser is staff, not one of the residents
    assert total.knows == {"civilised": 0, "sanitary": 0, "garden": 1, "food_safety": 0}
    assert total.share("garden") == pytest.approx(0.25)
    assert (total.participants, total.answers, total.correct) == (3, 19, 17)
    first, second = report.building("1号楼"), report.building("2号楼")
    assert first is not None and second is not None
    assert (first.registered, first.knows["garden"], first.participants) == (2, 1, 2)
    assert (second.registered, second.knows["garden"], second.participants, second.average) == (2, 0, 1, 1.0)

    world.clock.advance(days=31)
    later = (await quiz.stats.for_organiser(ORGANISER)).total
    assert (later.knows["garden"], later.participants, later.average) == (1, 0, 0.0)  # knowledge stays

    with pytest.raises(Forbidden):
        await quiz.stats.for_organiser(ANNA)


async def test_spaced_repetition_state_survives_in_storage(world: World) -> None:
    quiz = quiz_service(world, round_size=1)
    await world.resident(ANNA, "1")
    view = await quiz.start(ANNA, "civilised")
    question = quiz.library.questions[view.question_id]
    correct = {question.text("zh_Hans").options[i] for i in question.correct}
    wrong = next(i for i, text in enumerate(view.options) if text not in correct)
    if view.multi:
        view = await quiz.toggle(ANNA, view.round_id, 0, wrong)
    await quiz.answer(ANNA, view.round_id, 0, None if view.multi else wrong)
    world.clock.advance(days=1)
    assert (await quiz.start(ANNA, "civilised")).question_id == question.id
    overview = await quiz.overview(ANNA)
    civilised = next(p for p in overview.tracks if p.track.key == "civilised")
    assert (civilised.answered, civilised.correct, civilised.due) == (1, 0, 1)
