"""Helpers for quiz tests: an app on a fake clock, registration, answering by button, polls in a group."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path

from bot.app import App, build_app
from bot.config import DatabaseSettings, Settings
from bot.conversation.incoming import Incoming, PollAnswer
from bot.conversation.replies import Outgoing, OutPoll
from bot.conversation.state import MemoryStateStore
from bot.domain.roles import Role
from bot.services.quiz import QuizService
from tests.support.points import FakeClock
from tests.support.transcript import FakeChat

_updates = itertools.count(50_000)


async def quiz_app(path: Path, clock: FakeClock) -> App:
    """The real app on ``path`` (an SQLite file) with the fake clock."""
    settings = Settings(database=DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    return await build_app(settings, clock=clock, state_store=MemoryStateStore(), bot_username="sicheng_bot")


async def register(chat: FakeChat, link: str = "cdemo_b1") -> None:
    """Join the demo community through the real onboarding dialog."""
    await chat.send(f"/start {link}")
    await chat.press("中文")
    await chat.press("同意")


async def make_organiser(app: App, user_id: int) -> FakeChat:
    chat = FakeChat(app.core, user_id=user_id, first_name="王主任")
    await register(chat)
    await app.services.access.grant(user_id, Role.ORGANISER, "demo", None)
    return chat


def option_buttons(chat: FakeChat) -> list[str]:
    """Callback data of the option buttons of the latest question (in shown order)."""
    rows = chat.last().buttons
    data = [d for row in rows for _, d in row if d and ("quiz.ans" in d or "quiz.tog" in d)]
    assert data, f"no question on screen: {chat.last()}"
    return data


async def answer_current(chat: FakeChat, app: App, *, right: bool) -> list[str]:
    """Answer the question on screen right or wrong by pressing its buttons (ticking, then submitting)."""
    view = await app.services.quiz.resume(chat.user_id)
    question = app.services.quiz.library.questions[view.question_id]
    correct = {question.text(loc).options[i] for i in question.correct for loc in ("zh_Hans", "en")}
    right_ones = [i for i, text in enumerate(view.options) if text in correct]
    wrong_one = next(i for i in range(len(view.options)) if i not in right_ones)
    pick = right_ones if right else [wrong_one]
    buttons = option_buttons(chat)
    if not view.multi:
        return await chat.press_data(buttons[pick[0]])
    for index in pick:
        await chat.press_data(option_buttons(chat)[index])
    submit = next(d for row in chat.last().buttons for _, d in row if d and "quiz.sub" in d)
    return await chat.press_data(submit)


def polls(out: list[Outgoing]) -> list[OutPoll]:
    return [item for item in out if isinstance(item, OutPoll)]


async def vote(app: App, user_id: int, poll_id: str, option: int, name: str = "居民") -> None:
    """A poll_answer update from ``user_id`` through the core."""
    incoming = Incoming(
        update_id=next(_updates),
        user_id=user_id,
        chat_id=user_id,
        first_name=name,
        poll_answer=PollAnswer(poll_id, (option,)),
    )
    assert await app.core.handle(incoming) == []


async def finish_due_rounds(app: App, now: datetime) -> list[Outgoing]:
    """The periodic runner's group-quiz step, and what it queued in the outbox (rendered, in order)."""
    from tests.support.outbox import drain

    await app.services.quiz.group.due(now)
    return await drain(app)


async def play(quiz: QuizService, telegram_id: int, track: str, answers: list[bool]) -> None:
    """Quiz rounds through the service, answering right or wrong in turn (ticking and submitting multi-answer
    questions); a new round starts when one ends and answers remain."""
    view = await quiz.start(telegram_id, track)
    for number, right in enumerate(answers, 1):
        question = quiz.library.questions[view.question_id]
        correct = {question.text(loc).options[i] for i in question.correct for loc in ("zh_Hans", "en")}
        shown = [i for i, text in enumerate(view.options) if (text in correct) is right]
        if view.multi:
            for index in shown if right else shown[:1]:
                view = await quiz.toggle(telegram_id, view.round_id, view.position, index)
            feedback = await quiz.answer(telegram_id, view.round_id, view.position, None)
        else:
            feedback = await quiz.answer(telegram_id, view.round_id, view.position, shown[0])
        assert feedback.correct is right
        if number < len(answers):
            view = feedback.next or await quiz.start(telegram_id, track)
