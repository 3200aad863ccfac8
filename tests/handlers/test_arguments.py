"""Issue #15, arguments and small resident fixes: dialog transcripts in zh-Hans and English.

/linkgroup with a code the organiser cannot use, /stats and /groupquiz arguments, /report in a group, 再来一轮
pressed twice, a photo's caption as the description, honest /stats figures, told-apart masked names.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import App, build_app
from bot.config import DatabaseSettings, FilesSettings, Settings
from bot.conversation.incoming import ChatType
from bot.conversation.replies import OutMessage
from bot.domain.quiz_figures import distinguish
from bot.domain.roles import Role
from tests.support.points import FakeClock
from tests.support.quiz import answer_current, finish_due_rounds, polls, register, vote
from tests.support.reports import FakeDownloader, jpeg_with_gps, png
from tests.support.transcript import FakeChat

GROUP = -100_321
ORGANISER, WORKER, LI, CHEN, WANG = 9001, 9002, 4001, 4002, 4003


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db(tmp_path: Path, sqlite_template: Path) -> Path:
    path = tmp_path / "arguments.db"
    path.write_bytes(sqlite_template.read_bytes())
    return path


@pytest.fixture
async def app(db: Path, tmp_path: Path, clock: FakeClock) -> AsyncIterator[App]:
    """The real app on a migrated SQLite file, a fake clock and photo downloads, with the demo community."""
    files = FakeDownloader()
    files.add("p1", jpeg_with_gps())
    files.add("p2", png())
    settings = Settings(
        database=DatabaseSettings(url=f"sqlite+aiosqlite:///{db}"), files=FilesSettings(root=tmp_path / "media")
    )
    app = await build_app(settings, clock=clock, bot_username="sicheng_bot", downloader=files)
    await app.services.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼"), ("3", "3号楼")])
    await app.services.communities.add("east", "东湖社区", [("1", "1栋")])
    yield app
    await app.aclose()


def person(app: App, user_id: int, name: str, *, en: bool = False, chat_id: int | None = None) -> FakeChat:
    kind = ChatType.SUPERGROUP if chat_id else ChatType.PRIVATE
    language = "en" if en else "zh-hans"
    return FakeChat(app.core, user_id=user_id, first_name=name, language_code=language, chat_id=chat_id, chat_type=kind)


async def join(chat: FakeChat, link: str = "cdemo_b1") -> FakeChat:
    """Register through the onboarding dialog, in the chat's language."""
    if chat.language_code == "en":
        await chat.send(f"/start {link}")
        await chat.press("English")
        await chat.press("I agree")
    else:
        await register(chat, link)
    return chat


async def organiser(app: App, *, en: bool = False) -> FakeChat:
    """The demo community's organiser, in the residents' group (linked)."""
    await join(person(app, ORGANISER, "王主任", en=en))
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
    group = person(app, ORGANISER, "王主任", en=en, chat_id=GROUP)
    await group.send("/linkgroup demo")
    return group


# ---- /linkgroup with a code the organiser cannot use -------------------------------------------------------


async def test_linkgroup_with_an_unknown_code_names_the_codes_the_organiser_may_link(app: App) -> None:
    group = await organiser(app)
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "east", None)
    replies = await group.send("/linkgroup nosuch")
    assert "没有代码为“nosuch”的社区" in replies[0] and "只有社区工作人员" not in replies[0]
    assert "· demo —— 示范社区" in replies[0] and "· east —— 东湖社区" in replies[0]
    assert "例如：/linkgroup demo" in replies[0]
    linked = await app.services.communities.community_of_group(GROUP)
    assert linked is not None and linked.code == "demo"  # nothing changed


async def test_linkgroup_of_a_community_one_does_not_organise_says_so_in_english(app: App) -> None:
    group = await organiser(app, en=True)
    replies = await group.send("/linkgroup east")
    assert "You are not an organiser of 东湖社区 (east)" in replies[0]
    assert "Communities you can link:\n· demo — 示范社区" in replies[0]
    from storage.db import make_sessionmaker
    from storage.repositories import SqlAuditRepository

    async with make_sessionmaker(app.engine)() as session:
        entry = (await SqlAuditRepository(session).recent(1))[0]
    assert (entry.actor_telegram_id, entry.action, entry.allowed) == (ORGANISER, "linkgroup", False)
    replies = await group.send("/linkgroup nosuch")
    assert 'There is no community with the code "nosuch"' in replies[0]


async def test_linkgroup_with_an_unknown_second_word_answers_the_usage(app: App) -> None:
    group = await organiser(app)
    replies = await group.send("/linkgroup demo stuff")
    assert "看不懂“stuff”" in replies[0] and "用法：/linkgroup 社区代码 [staff]" in replies[0]


# ---- /stats and /groupquiz arguments ------------------------------------------------------------------------


async def test_stats_with_an_unknown_word_answers_the_usage(app: App) -> None:
    group = await organiser(app)
    replies = await group.send("/stats foo")
    assert "看不懂“foo”" in replies[0] and "/stats reports [天数]" in replies[0] and "知晓率" in replies[0]
    assert "四城知晓率" not in replies[0]  # not silently the awareness figures


async def test_stats_with_unknown_words_answers_the_usage_in_english(app: App) -> None:
    english = await organiser(app, en=True)
    replies = await english.send("/stats foo bar")
    assert '"foo bar" is not understood' in replies[0] and "/stats reports [days]" in replies[0]


async def test_groupquiz_says_when_numbers_were_brought_within_limits(app: App) -> None:
    group = await organiser(app)
    replies = await group.send("/groupquiz 文明 999 1")
    assert "共 10 题 · 每题 10 秒" in replies[0]
    assert "您写的是 999 题，每场最多 10 题，已按 10 题进行" in replies[0]
    assert "您写的是 1 秒，每题须在 10–600 秒之间，已按 10 秒进行" in replies[0]
    assert len(polls(group.sent)) == 1


async def test_groupquiz_in_english_says_what_was_clamped_and_keeps_the_rest_quiet(app: App) -> None:
    group = await organiser(app, en=True)
    replies = await group.send("/groupquiz garden 3 9999")
    assert "3 questions · 600 seconds each" in replies[0]
    assert "you asked for 9999 seconds; each question must last 10–600 seconds" in replies[0]
    assert "you asked for 3" not in replies[0]


async def test_groupquiz_with_unknown_words_starts_nothing(app: App) -> None:
    group = await organiser(app)
    replies = await group.send("/groupquiz 月亮 5")
    assert "看不懂“月亮 5”，竞赛没有开始" in replies[0] and "用法：/groupquiz" in replies[0]
    assert polls(group.sent) == []


# ---- /report in a group -----------------------------------------------------------------------------------


async def test_report_in_a_group_opens_the_private_chat_with_the_dialog_started(app: App) -> None:
    await join(person(app, LI, "小李"))
    in_group = person(app, LI, "小李", chat_id=GROUP)
    replies = await in_group.send("/report")
    assert "只能在与我的私聊中使用" in replies[0] and "请点下方按钮" in replies[0]
    assert in_group.last().buttons == [[("👉 打开私聊继续", "https://t.me/sicheng_bot?start=report")]]

    private = person(app, LI, "小李")
    replies = await private.send("/start report")  # what Telegram sends when the button's chat is started
    assert "请选择问题类别" in replies[0] and "乱扔垃圾/垃圾满溢" in private.labels()


async def test_report_button_in_english_and_for_someone_not_registered_yet(app: App) -> None:
    in_group = person(app, CHEN, "Chen", en=True, chat_id=GROUP)
    replies = await in_group.send("/report")
    assert "this works only in a private chat with me. Tap the button below" in replies[0]
    assert in_group.last().buttons == [[("👉 Continue in a private chat", "https://t.me/sicheng_bot?start=report")]]
    private = person(app, CHEN, "Chen", en=True)
    replies = await private.send("/start report")
    assert "English" in private.labels()  # not registered: joining comes first, as with a plain /start


async def test_other_private_commands_in_a_group_get_a_plain_open_chat_button(app: App) -> None:
    in_group = person(app, WANG, "小王", chat_id=GROUP)
    replies = await in_group.send("/mydata")
    assert "只能在与我的私聊中使用" in replies[0]
    assert in_group.last().buttons == [[("👉 打开私聊继续", "https://t.me/sicheng_bot?start")]]


async def test_community_posters_still_work_after_the_report_payload(app: App) -> None:
    chat = await join(person(app, WANG, "小王"), "cdemo_b2")
    place = await app.services.residents.profile(WANG)
    assert place is not None and place.is_registered
    replies = await chat.send("/start report")
    assert "请选择问题类别" in replies[0]


# ---- 再来一轮 pressed twice -----------------------------------------------------------------------------------


async def finish_a_round(chat: FakeChat, app: App, start: str) -> None:
    await chat.send("/quiz")
    await chat.press("国家园林城市" if chat.language_code != "en" else "National Garden City")
    await chat.press(start)
    for _ in range(5):
        await answer_current(chat, app, right=True)


async def rounds_of(app: App, user_id: int) -> int:
    from sqlalchemy import func, select

    from storage.db import make_sessionmaker
    from storage.quiz_models import QuizRoundRow

    resident = await app.services.residents.profile(user_id)
    assert resident is not None
    async with make_sessionmaker(app.engine)() as session:
        query = select(func.count()).select_from(QuizRoundRow).where(QuizRoundRow.resident_id == resident.id)
        return int((await session.execute(query)).scalar_one())


async def test_pressing_another_round_twice_starts_one_round(app: App) -> None:
    chat = await join(person(app, LI, "小李"))
    await finish_a_round(chat, app, "开始答题（5 题）")
    summary = chat.last()
    assert "🔁 再来一轮" in chat.labels(summary)

    first = await chat.press("再来一轮", summary.message_id)
    assert "第 1/5 题 · 国家园林城市" in first[0]
    second = await chat.press("再来一轮", summary.message_id)
    assert second == ["这一轮已经开始了，正在第 1/5 题：请在上方的题目里继续作答。"]
    assert chat.answers[-1].alert
    assert await rounds_of(app, LI) == 2  # the finished one and one new round

    await answer_current(chat, app, right=True)  # the round started by the first press goes on
    again = await chat.press("再来一轮", summary.message_id)
    assert again == ["这一轮已经开始了，正在第 2/5 题：请在上方的题目里继续作答。"]


async def test_two_presses_handled_at_once_start_one_round_in_english(app: App) -> None:
    chat = await join(person(app, LI, "Li", en=True))
    await finish_a_round(chat, app, "Start the quiz (5 questions)")
    summary = chat.last()
    replies = await asyncio.gather(
        chat.press("Another round", summary.message_id), chat.press("Another round", summary.message_id)
    )
    texts = sorted(text for reply in replies for text in reply)
    assert len([t for t in texts if "Question 1/5 · National Garden City" in t]) == 1
    assert "That round has already started and is on question 1/5: answer it above." in texts
    assert await rounds_of(app, LI) == 2


# ---- a photo's caption is the description ------------------------------------------------------------------


async def test_a_photo_caption_becomes_the_description_and_can_be_changed(app: App) -> None:
    chat = await join(person(app, LI, "小李"))
    await chat.send("/report")
    await chat.press("乱扔垃圾")
    replies = await chat.send_photo("p1", caption="3号楼门口垃圾桶满了，垃圾散落一地")
    assert "已收到第 1 张照片" in replies[0]
    assert "照片上的文字已记为问题描述：“3号楼门口垃圾桶满了，垃圾散落一地”" in replies[0]
    await chat.press("照片发完了")
    replies = await chat.press("3号楼")
    assert "请用一两句话描述问题" not in " ".join(replies)  # not asked again
    assert "问题描述（取自照片上的文字）：3号楼门口垃圾桶满了，垃圾散落一地" in replies[1]
    replies = await chat.press("显示我的称呼")
    assert "描述：3号楼门口垃圾桶满了，垃圾散落一地" in replies[0]
    assert "✏️ 修改描述" in chat.labels()

    replies = await chat.press("修改描述")
    assert "请用一两句话描述问题" in replies[0]
    replies = await chat.send("3号楼门口的垃圾桶满了，已经溢出来两天")
    assert "描述：3号楼门口的垃圾桶满了，已经溢出来两天" in replies[0] and "显示称呼" in replies[0]
    replies = await chat.press("确认提交")
    assert "已提交" in replies[0]
    (mine,) = (await app.services.reports.mine(LI)).reported
    assert mine.description == "3号楼门口的垃圾桶满了，已经溢出来两天"


async def test_a_too_short_caption_keeps_the_photo_and_the_question_in_english(app: App) -> None:
    chat = await join(person(app, LI, "Li", en=True))
    await chat.send("/report")
    await chat.press(chat.labels()[0])
    replies = await chat.send_photo("p1", caption="bin")
    assert "Photo 1 received" in replies[0]
    assert "caption was not kept as the description: it must be 5–500 characters (it has 3)" in replies[0]
    replies = await chat.send_photo("p2", caption="The bin at building 3 is overflowing")
    assert 'caption is kept as the description: "The bin at building 3 is overflowing"' in replies[0]
    await chat.press("Done with photos")
    replies = await chat.press("3号楼")
    assert "Description (from the photo's caption): The bin at building 3 is overflowing" in replies[1]
    replies = await chat.press("Show my name")
    assert "Photos: 2" in replies[0] and "Description: The bin at building 3 is overflowing" in replies[0]


# ---- honest /stats ----------------------------------------------------------------------------------------


async def test_stats_counts_residents_only_and_says_why_a_building_has_no_figures(app: App) -> None:
    group = await organiser(app)  # lives in 1号楼 but is staff
    await join(person(app, WORKER, "张网格"), "cdemo_b3")
    await app.services.access.grant(WORKER, Role.GRID_WORKER, "demo", None)
    li = await join(person(app, LI, "小李"), "cdemo_b1")
    await join(person(app, CHEN, "小陈"), "cdemo_b2")
    await finish_a_round(li, app, "开始答题（5 题）")

    replies = await group.send("/stats")
    text = replies[0]
    assert "<b>全社区</b>（已登记居民 2 人）" in text and "网格员、组织者和服务点不计入" in text
    assert "<b>1号楼</b>（已登记居民 1 人）" in text
    assert "<b>2号楼</b>（已登记居民 1 人）" in text and "参与率：0% · 平均正确率：暂无（近 30 天无人答题）" in text
    assert "<b>3号楼</b>：—（暂无登记居民）" in text  # only the grid worker lives there
    rows = text.split("\n\n")[1:]
    assert [row.count("%") for row in rows] == [6, 6, 5, 0]  # figures of nobody are never 0%


async def test_stats_in_english_shows_a_dash_for_nobody(app: App) -> None:
    group = await organiser(app, en=True)
    replies = await group.send("/stats")
    assert "<b>Whole community</b>: — (no registered residents yet)" in replies[0]
    assert "<b>3号楼</b>: — (no registered residents yet)" in replies[0]
    assert "%" not in replies[0].split("\n\n", 1)[1]


# ---- masked names told apart ------------------------------------------------------------------------------


async def leaderboard_of(app: App, clock: FakeClock, group: FakeChat, voters: list[tuple[int, str]]) -> str:
    await group.send("/groupquiz garden 1 30")
    (poll,) = polls(group.sent)
    await app.core.poll_sent(poll, "p1", 7000)
    for user_id, name in voters:
        await vote(app, user_id, "p1", poll.correct_option_ids[0], name)
    clock.advance(seconds=40)
    out = await finish_due_rounds(app, clock.now)
    return next(o.text for o in out if isinstance(o, OutMessage) and o.chat_id == GROUP)


async def test_group_leaderboard_tells_apart_names_that_mask_alike(app: App, clock: FakeClock) -> None:
    group = await organiser(app)
    await join(person(app, LI, "小李"), "cdemo_b3")
    await join(person(app, CHEN, "小陈"), "cdemo_b2")
    await join(person(app, WANG, "王芳"), "cdemo_b3")
    board = await leaderboard_of(app, clock, group, [(LI, "小李"), (CHEN, "小陈"), (WANG, "王芳")])
    assert "🥇 小** · 3号楼 —— 答对 1 题" in board and "🥈 小** · 2号楼 —— 答对 1 题" in board
    assert "🥉 王** —— 答对 1 题" in board  # a name nobody shares stays as it was
    assert "小李" not in board and "小陈" not in board


async def test_group_leaderboard_numbers_alike_names_of_one_building_in_english(app: App, clock: FakeClock) -> None:
    group = await organiser(app, en=True)
    await join(person(app, LI, "Li Na", en=True), "cdemo_b3")
    await join(person(app, CHEN, "Lucy", en=True), "cdemo_b3")
    board = await leaderboard_of(app, clock, group, [(LI, "Li Na"), (CHEN, "Lucy"), (WANG, "Liam")])
    assert "🥇 L** · 3号楼 (1) — 1 correct" in board and "🥈 L** · 3号楼 (2) — 1 correct" in board
    assert "🥉 L** — 1 correct" in board  # Liam has not joined: no building to show


def test_distinguish_adds_only_what_is_needed() -> None:
    assert distinguish([("李**", "1号楼"), ("王**", "1号楼")]) == ["李**", "王**"]
    assert distinguish([("李**", "1号楼"), ("李**", "2号楼"), ("李**", None)]) == [
        "李** · 1号楼",
        "李** · 2号楼",
        "李**",
    ]
    assert distinguish([("李**", "1号楼"), ("李**", "1号楼"), ("李**", None), ("李**", None)]) == [
        "李** · 1号楼 (1)",
        "李** · 1号楼 (2)",
        "李** (1)",
        "李** (2)",
    ]


async def test_points_ranking_tells_apart_names_that_mask_alike_by_building(app: App) -> None:
    await organiser(app)
    li = await join(person(app, LI, "小李"), "cdemo_b3")
    await join(person(app, CHEN, "小陈"), "cdemo_b2")
    await join(person(app, WANG, "Wang", en=True), "cdemo_b2")
    for user_id, points in ((LI, 5), (CHEN, 3), (WANG, 1)):
        await app.services.points.grant(ORGANISER, user_id, points, "test", f"k{user_id}")
    replies = await li.send("/rank")
    assert "1. 小** · 3号楼　5 分　← 我" in replies[0] and "2. 小** · 2号楼　3 分" in replies[0]
    assert "3. W**　1 分" in replies[0] and "小李" not in replies[0] and "小陈" not in replies[0]
    replies = await person(app, WANG, "Wang", en=True).send("/rank")
    assert "小** · 3号楼" in replies[0] and "小** · 2号楼" in replies[0] and "W**" in replies[0]
