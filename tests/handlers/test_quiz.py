"""Dialog transcripts of private quizzes through the real core: rounds, resume, double presses, caps, repetition."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bot.app import App
from bot.conversation.context import Ctx
from bot.conversation.replies import Action, SendText
from bot.domain.quiz import Library
from handlers.quiz_stats import VIEWS, stats_view
from tests.support.points import FakeClock
from tests.support.quiz import answer_current, make_organiser, option_buttons, quiz_app, register
from tests.support.transcript import FakeChat


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "quiz.db"
    path.write_bytes(sqlite_template.read_bytes())
    return path


@pytest.fixture
async def app(db_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    app = await quiz_app(db_path, clock)
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    yield app
    await app.aclose()


@pytest.fixture
async def resident(app: App) -> FakeChat:
    chat = FakeChat(app.core, user_id=3001, first_name="李娟")
    await register(chat)
    return chat


async def balance(app: App, user_id: int) -> int:
    return (await app.services.points.overview(user_id)).balance


async def test_full_private_round_with_feedback_score_and_points(resident: FakeChat, app: App) -> None:
    replies = await resident.send("/quiz")
    garden = sum(1 for question in app.services.quiz.library.questions.values() if question.track == "garden")
    assert "学习答题" in replies[0] and f"已答 0/{garden} 题" in replies[0]
    assert resident.labels()[:4] == ["🏅 全国文明城市", "🧹 国家卫生城市", "🌳 国家园林城市", "🥗 国家食品安全示范城市"]
    assert "综合答题" in resident.labels()[4]

    replies = await resident.press("国家园林城市")
    assert "300米见绿、500米见园" in replies[0]
    assert "口袋公园：家门口的小公园" in " ".join(resident.labels())
    replies = await resident.press("开始答题（5 题）")
    assert "第 1/5 题 · 国家园林城市" in replies[0]

    for number in range(1, 5):
        replies = await answer_current(resident, app, right=True)
        assert "✅ 回答正确！" in replies[0] and "💡" in replies[0]
        assert f"文明积分 +1 分（余额 {number} 分）" in replies[0]
        assert f"第 {number + 1}/5 题" in replies[1]
    replies = await answer_current(resident, app, right=False)
    assert "❌ 回答错误。" in replies[0] and "正确答案：" in replies[0] and "明天会再出现" in replies[0]
    assert "答对 <b>4/5</b> 题，获得文明积分 4 分" in replies[1]
    assert "1 天、3 天、7 天" in replies[1]
    assert await balance(app, resident.user_id) == 4


async def test_learn_button_of_the_main_menu_opens_the_tracks(resident: FakeChat) -> None:
    await resident.send("/menu")
    replies = await resident.press("学习答题")
    assert "选一个赛道" in replies[0]


async def test_unregistered_person_is_asked_to_join_first(app: App) -> None:
    stranger = FakeChat(app.core, user_id=3999)
    replies = await stranger.send("/quiz")
    assert "需要先加入社区" in replies[0]


async def test_card_then_take_the_quiz(resident: FakeChat) -> None:
    await resident.send("/quiz")
    await resident.press("国家卫生城市")
    card_label = next(label for label in resident.labels() if label.startswith("📖"))
    replies = await resident.press(card_label)
    assert "来源：" in replies[0]
    replies = await resident.press("学完了，去答题")
    assert "第 1/5 题 · 国家卫生城市" in replies[-1]


async def test_round_resumes_after_a_restart(resident: FakeChat, app: App, db_path: Path, clock: FakeClock) -> None:
    await resident.send("/quiz")
    await resident.press("国家食品安全示范城市")
    await resident.press("开始答题")
    await answer_current(resident, app, right=True)
    await answer_current(resident, app, right=True)
    old_buttons = option_buttons(resident)
    await app.aclose()

    restarted = await quiz_app(db_path, clock)  # a new core and app over the same database
    try:
        again = FakeChat(restarted.core, user_id=resident.user_id)
        replies = await again.send("/quiz")
        assert "还没做完" in replies[0]
        assert "继续上次的答题（第 3/5 题）" in again.labels()[0]
        replies = await again.press("继续上次的答题")
        assert "第 3/5 题" in replies[-1]
        replies = await again.press_data(old_buttons[0])  # the button of the message sent before the restart
        assert "回答正确" in replies[0] or "回答错误" in replies[0]
        assert "第 4/5 题" in replies[-1]
    finally:
        await restarted.aclose()


async def test_pressing_an_old_button_again_does_not_score_twice(resident: FakeChat, app: App) -> None:
    await resident.send("/quiz")
    await resident.press("国家园林城市")
    await resident.press("开始答题")
    first = option_buttons(resident)
    await answer_current(resident, app, right=True)
    assert await balance(app, resident.user_id) == 1
    for data in first:
        replies = await resident.press_data(data)
        assert replies == ["这道题已经答过了，不会重复计分。"]
        assert resident.answers[-1].alert
    assert await balance(app, resident.user_id) == 1


async def test_the_eleventh_point_of_a_day_is_capped_and_explained(resident: FakeChat, app: App) -> None:
    app.services.quiz.round_size = 11
    await resident.send("/quiz")
    await resident.press("全国文明城市")
    await resident.press("开始答题（11 题）")
    for _ in range(10):
        replies = await answer_current(resident, app, right=True)
    assert "余额 10 分" in replies[0]
    replies = await answer_current(resident, app, right=True)
    assert "今天的答题积分已达上限（每天最多 10 分）" in replies[0]
    assert "答对 <b>11/11</b> 题，获得文明积分 10 分" in replies[1]
    assert "每天最多 10 分" in replies[1]
    assert await balance(app, resident.user_id) == 10


async def test_wrong_answers_come_back_after_one_three_and_seven_days(
    resident: FakeChat, app: App, clock: FakeClock
) -> None:
    async def first_question() -> str:
        await resident.send("/quiz")
        await resident.press("国家园林城市")
        await resident.press("开始答题")
        return (await app.services.quiz.resume(resident.user_id)).question_id

    missed = await first_question()
    await answer_current(resident, app, right=False)
    clock.advance(hours=23)
    assert await first_question() != missed  # not due yet: new questions first
    clock.advance(hours=1)
    assert await first_question() == missed  # due after one day
    await answer_current(resident, app, right=True)
    clock.advance(days=2)
    assert await first_question() != missed
    clock.advance(days=1)
    assert await first_question() == missed  # then after three days
    await answer_current(resident, app, right=True)
    clock.advance(days=7)
    assert await first_question() == missed  # then after seven
    await answer_current(resident, app, right=True)
    clock.advance(days=30)
    assert await first_question() != missed  # learnt: it rests until the bank runs out


async def test_forged_and_foreign_quiz_buttons_are_refused(resident: FakeChat, app: App) -> None:
    await resident.send("/quiz")
    await resident.press("国家园林城市")
    await resident.press("开始答题")
    mine = option_buttons(resident)[0]
    _, _, round_id, position, _ = mine.split("|")

    assert await resident.press_data("1|quiz.ans|abc|0|0") == ["这个按钮已失效，请重新打开菜单（/menu）。"]
    assert await resident.press_data("1|quiz.ans|1|0|0|7") == ["这个按钮已失效，请重新打开菜单（/menu）。"]
    assert "已经结束" in (await resident.press_data(f"1|quiz.ans|{int(round_id) + 99}|0|0"))[0]
    assert "无效" in (await resident.press_data(f"1|quiz.ans|{round_id}|{position}|9"))[0]

    neighbour = FakeChat(app.core, user_id=3002, first_name="张伟")
    await register(neighbour, "cdemo_b2")
    replies = await neighbour.press_data(mine)
    assert replies == ["这不是您的答题按钮。发送 /quiz 开始您自己的一轮答题。"]
    assert await balance(app, neighbour.user_id) == 0
    assert await balance(app, resident.user_id) == 0


async def test_multi_answer_questions_tick_options_then_submit(resident: FakeChat, app: App) -> None:
    library = app.services.quiz.library
    multi = {q.id: q for q in library.questions.values() if q.multi and q.track == "food_safety"}
    app.services.quiz.library = Library(library.tracks, multi, library.cards)
    await resident.send("/quiz")
    await resident.press("国家食品安全示范城市")
    await resident.press("开始答题")
    assert "多选题" in resident.last().text
    replies = await resident.press("提交答案")
    assert replies == ["请先选择至少一个选项，再点“提交答案”。"]
    first = option_buttons(resident)[0]
    replies = await resident.press_data(first)
    assert "已选 1 项" in replies[0] and resident.labels()[0].startswith("☑️")
    await resident.press_data(first)  # untick
    assert resident.labels()[0].startswith("⬜")
    replies = await answer_current(resident, app, right=True)
    assert "✅ 回答正确！" in replies[0]
    assert await balance(app, resident.user_id) == 1


async def test_english_resident_gets_english_quiz(app: App) -> None:
    chat = FakeChat(app.core, user_id=3003, first_name="Anna", language_code="en")
    await chat.send("/start cdemo_b1")
    await chat.press("English")
    await chat.press("I agree")
    replies = await chat.send("/quiz")
    assert "Learn &amp; quiz" in replies[0]
    await chat.press("National Garden City")
    replies = await chat.press("Start the quiz")
    assert "Question 1/5 · National Garden City" in replies[0]
    replies = await answer_current(chat, app, right=True)
    assert "✅ Correct!" in replies[0]


async def test_stats_shows_awareness_to_organisers_only(resident: FakeChat, app: App) -> None:
    assert "只有社区工作人员" in (await resident.send("/stats"))[0]
    organiser = await make_organiser(app, 9001)
    replies = await organiser.send("/stats")
    assert "示范社区 · 四城知晓率" in replies[0]
    # The organiser is staff, not counted: the resident alone, in 1号楼; nobody registered in 2号楼.
    assert "<b>全社区</b>（已登记居民 1 人）" in replies[0] and "· 国家园林城市：0%" in replies[0]
    assert "<b>1号楼</b>" in replies[0] and "<b>2号楼</b>：—（暂无登记居民）" in replies[0]


async def test_stats_subcommands_belong_to_their_features(app: App) -> None:
    organiser = await make_organiser(app, 9001)

    @stats_view("demo")
    async def demo_view(ctx: Ctx) -> Sequence[Action]:
        return [SendText("quiz/round_over")]

    try:
        assert "已经结束" in (await organiser.send("/stats demo"))[0]
    finally:
        VIEWS.pop("demo")
