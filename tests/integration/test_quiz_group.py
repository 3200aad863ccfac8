"""Group quizzes through the core: polls posted one at a time, votes credited once, leaderboard, late joiners."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutMessage, OutPoll
from handlers.quiz_group import parse_args
from tests.support.points import FakeClock
from tests.support.quiz import finish_due_rounds, make_organiser, polls, quiz_app, register, vote
from tests.support.transcript import FakeChat

GROUP = -100_555
ORGANISER, ALICE, BOB, CAROL, DAVE = 9001, 4001, 4002, 4003, 4004  # Carol and Dave are not registered


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "group.db"
    path.write_bytes(sqlite_template.read_bytes())
    return path


@pytest.fixture
async def app(db_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    app = await quiz_app(db_path, clock)
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    yield app
    await app.aclose()


@pytest.fixture
async def group(app: App) -> FakeChat:
    """The organiser in the residents' group, already linked to the demo community."""
    await make_organiser(app, ORGANISER)
    chat = FakeChat(app.core, user_id=ORGANISER, chat_id=GROUP, chat_type=ChatType.SUPERGROUP, first_name="王主任")
    await chat.send("/linkgroup demo")
    for user_id, name in ((ALICE, "李娟"), (BOB, "张伟")):
        await register(FakeChat(app.core, user_id=user_id, first_name=name))
    return chat


async def post(app: App, poll: OutPoll, poll_id: str) -> None:
    """What the channel does after sendPoll: tell the core the poll's id."""
    await app.core.poll_sent(poll, poll_id, 7000)


async def balance(app: App, user_id: int) -> int:
    return (await app.services.points.overview(user_id)).balance


async def test_group_quiz_credits_each_correct_answer_once_and_posts_a_leaderboard(
    group: FakeChat, app: App, clock: FakeClock
) -> None:
    replies = await group.send("/groupquiz garden 3 30")
    assert "知识竞赛</b>开始啦" in replies[0] and "共 3 题 · 每题 30 秒" in replies[0]
    (first,) = polls(group.sent)
    assert first.chat_id == GROUP and first.open_period == 30 and len(first.correct_option_ids) == 1
    assert first.question.startswith("(1/3) ")
    right, wrong = first.correct_option_ids[0], (first.correct_option_ids[0] + 1) % len(first.options)

    await post(app, first, "p1")
    await vote(app, ALICE, "p1", right, "李娟")
    await vote(app, BOB, "p1", wrong, "张伟")
    await vote(app, CAROL, "p1", right, "Carol")
    await vote(app, ALICE, "p1", right, "李娟")  # Telegram delivered the same answer twice
    assert await balance(app, ALICE) == 0  # points follow when the poll closes, off the burst's hot path

    assert await finish_due_rounds(app, clock.now) == []  # the poll is still open
    clock.advance(seconds=34)
    (second,) = polls(await finish_due_rounds(app, clock.now))
    assert (await balance(app, ALICE), await balance(app, BOB)) == (1, 0)
    assert second.question.startswith("(2/3) ") and second.chat_id == GROUP
    assert await finish_due_rounds(app, clock.now) == []  # a second runner finds nothing to do
    await post(app, second, "p2")
    await vote(app, ALICE, "p2", second.correct_option_ids[0], "李娟")
    await vote(app, BOB, "p2", second.correct_option_ids[0], "张伟")

    clock.advance(seconds=34)
    (third,) = polls(await finish_due_rounds(app, clock.now))
    await post(app, third, "p3")
    await vote(app, ALICE, "p3", third.correct_option_ids[0], "李娟")
    await vote(app, CAROL, "p3", third.correct_option_ids[0], "Carol")
    await vote(app, DAVE, "p3", (third.correct_option_ids[0] + 1) % len(third.options), "Dave")

    clock.advance(seconds=34)
    out = await finish_due_rounds(app, clock.now)
    (board,) = [o for o in out if isinstance(o, OutMessage)]
    assert board.chat_id == GROUP, board.text
    lines = board.text.splitlines()
    assert "共 3 题，4 人参与。" in board.text
    assert (
        lines.index("🥇 李** —— 答对 3 题") < lines.index("🥈 C** —— 答对 2 题") < lines.index("🥉 张** —— 答对 1 题")
    )
    assert "有 1 位答对题目的朋友还没有加入社区" in board.text
    (button,) = board.inline_keyboard[0]
    assert button.url == "https://t.me/sicheng_bot?start=cdemo"
    assert (await balance(app, ALICE), await balance(app, BOB)) == (3, 1)
    garden = next(p for p in (await app.services.quiz.overview(ALICE)).tracks if p.track.key == "garden")
    assert (garden.answered, garden.correct) == (3, 3)  # group answers count towards knowledge too

    await vote(app, ALICE, "p3", third.correct_option_ids[0], "李娟")  # late duplicate after the end
    await vote(app, BOB, "p3", third.correct_option_ids[0], "张伟")  # late but first answer: counts once
    clock.advance(seconds=5)
    assert await finish_due_rounds(app, clock.now) == []  # the runner credits late answers
    assert await finish_due_rounds(app, clock.now) == []
    assert (await balance(app, ALICE), await balance(app, BOB)) == (3, 2)

    carol = FakeChat(app.core, user_id=CAROL, first_name="Carol")
    await carol.send("/start cdemo")
    await carol.press("中文")
    await carol.press("同意")
    replies = await carol.press("2号楼")
    assert "欢迎加入" in replies[0]
    assert "已经计入：文明积分 +2 分" in replies[1]
    assert await balance(app, CAROL) == 2
    assert await app.services.quiz.credit_pending(CAROL) == 0  # credited once only


async def test_only_an_organiser_in_a_linked_group_can_start_one_quiz_at_a_time(group: FakeChat, app: App) -> None:
    resident = FakeChat(app.core, user_id=ALICE, chat_id=GROUP, chat_type=ChatType.SUPERGROUP)
    assert "只有社区工作人员" in (await resident.send("/groupquiz garden"))[0]

    unlinked = FakeChat(app.core, user_id=ORGANISER, chat_id=-100_777, chat_type=ChatType.SUPERGROUP)
    assert "还没有关联社区" in (await unlinked.send("/groupquiz garden"))[0]

    assert "用法" in (await group.send("/groupquiz moon"))[0]
    assert "共 5 题 · 每题 30 秒" in (await group.send("/groupquiz 园林"))[0]
    assert "正在进行" in (await group.send("/groupquiz sanitary"))[0]

    private = FakeChat(app.core, user_id=ORGANISER)
    assert "社区群里发起" in (await private.send("/groupquiz garden"))[0]


async def test_group_polls_use_single_answer_questions_only(group: FakeChat, app: App, clock: FakeClock) -> None:
    await group.send("/groupquiz food_safety 10 10")
    posted = polls(group.sent)
    for _ in range(9):
        clock.advance(seconds=14)
        posted += polls(await finish_due_rounds(app, clock.now))
    library = app.services.quiz.library
    assert len(posted) == 10
    assert all(len(p.correct_option_ids) == 1 and len(p.options) >= 2 for p in posted)
    texts = [p.question.split(") ", 1)[1] for p in posted]
    questions = [q for q in library.questions.values() if q.text("zh_Hans").question in texts]
    assert len(questions) == 10 and not any(q.multi for q in questions)


def test_groupquiz_arguments() -> None:
    assert parse_args("garden") == ("garden", 5, 30)
    assert parse_args("卫生 3") == ("sanitary", 3, 30)
    assert parse_args("mixed 4 20") == ("mixed", 4, 20)
    assert parse_args("") is None
    assert parse_args("garden x") is None
    assert parse_args("garden 1 2 3") is None


async def _one_poll_answered(group: FakeChat, app: App, clock: FakeClock) -> OutPoll:
    await group.send("/groupquiz garden 1 30")
    (first,) = polls(group.sent)
    await post(app, first, "p1")
    await vote(app, ALICE, "p1", first.correct_option_ids[0], "李娟")
    await vote(app, DAVE, "p1", first.correct_option_ids[0], "Dave")  # never registers
    return first


async def _votes_of(app: App, telegram_id: int) -> int:
    from sqlalchemy import func, select

    from storage.db import make_sessionmaker
    from storage.quiz_models import GroupQuizAnswerRow

    async with make_sessionmaker(app.engine)() as session:
        query = select(func.count()).where(GroupQuizAnswerRow.telegram_id == telegram_id)
        return int((await session.execute(query)).scalar_one())


async def test_unclaimed_group_answers_are_forgotten_after_thirty_days(
    group: FakeChat, app: App, clock: FakeClock
) -> None:
    await _one_poll_answered(group, app, clock)
    clock.advance(seconds=40)
    await finish_due_rounds(app, clock.now)
    assert await app.services.quiz.group.purge_unclaimed(clock.now) == 0
    clock.advance(days=31)
    assert await app.services.quiz.group.purge_unclaimed(clock.now) == 1
    assert (await _votes_of(app, DAVE), await _votes_of(app, ALICE)) == (0, 1)


async def test_deleteme_removes_group_answers_but_keeps_the_ledger(group: FakeChat, app: App, clock: FakeClock) -> None:
    await _one_poll_answered(group, app, clock)
    clock.advance(seconds=40)
    await finish_due_rounds(app, clock.now)
    assert await balance(app, ALICE) == 1
    await app.services.residents.delete(ALICE)
    assert await _votes_of(app, ALICE) == 0
    assert await app.services.points.check() == []


async def test_vote_arriving_before_the_poll_id_is_stored_is_not_lost(
    group: FakeChat, app: App, clock: FakeClock
) -> None:
    import asyncio

    await group.send("/groupquiz garden 1 30")
    (first,) = polls(group.sent)
    early = asyncio.create_task(vote(app, ALICE, "p1", first.correct_option_ids[0], "李娟"))
    await asyncio.sleep(0.1)  # the answer is being handled while sendPoll's answer is still on its way
    await post(app, first, "p1")
    await early
    clock.advance(seconds=40)
    await finish_due_rounds(app, clock.now)
    assert await balance(app, ALICE) == 1
