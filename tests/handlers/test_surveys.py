"""满意度测评 as transcripts in Chinese and in English: an organiser starts the library survey, a resident gets the
invitation, answers with a pause and /survey to go on, a multiple choice, a skipped optional question, a text over
the limit, changes an answer on the review and submits (points); a second submission, forged buttons and a survey
that is not theirs get a clear answer and change nothing."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from bot.app import App
from bot.domain.roles import Role
from tests.handlers.test_reports import RESIDENT as RESIDENT_OF_REPORT
from tests.handlers.test_reports import World, accept, report, resolve, worker_chat
from tests.handlers.test_reports import world as world  # the reports' fixture: a community with staff and photos
from tests.support.notices import Notices
from tests.support.transcript import FakeChat

ORGANISER = 2002
RESIDENT = 1001


@dataclass(frozen=True)
class Lang:
    locale: str
    telegram: str
    t: dict[str, str]


TEXT = {
    "new": ("从测评库新建", "New from the library"),
    "library": ("居民满意度测评", "Residents' satisfaction survey"),
    "created": ("已开始", "is open"),
    "invited": ("邀请您参加满意度测评，共 8 题", "invites you to a satisfaction survey: 8 questions"),
    "start": ("开始填写", "Start"),
    "q1": ("第 1/8 题", "question 1 of 8"),
    "anonymous": ("本测评为匿名测评", "This survey is anonymous"),
    "env": ("环境卫生", "cleanliness"),
    "later": ("稍后再答", "Later"),
    "paused": ("已暂停", "Paused"),
    "partly": ("已答一部分", "Partly answered"),
    "go_on": ("接着答", "Go on"),
    "q3": ("第 3/8 题", "question 3 of 8"),
    "skip": ("跳过", "Skip"),
    "heard": ("听说过", "I have heard of it"),
    "volunteer": ("志愿服务", "Volunteering"),
    "quiz": ("知识问答", "The quiz"),
    "done": ("选好了", "Done"),
    "type": ("请直接发送文字回答", "Type your answer"),
    "too_long": ("回答太长了", "too long"),
    "suggestion": ("希望多组织垃圾分类讲座", "More talks on waste sorting, please"),
    "review": ("请确认您的回答", "please check your answers"),
    "change3": ("改第 3 题", "Change 3"),
    "five": ("5 分", "5 of 5"),
    "submit": ("提交", "Submit"),
    "submitted": ("已提交", "is submitted"),
    "points": ("文明积分 3 分", "3 civility points"),
    "twice": ("您已经提交过这份测评了", "You have already submitted this survey"),
    "bad_answer": ("这个答案无效", "That answer is not valid"),
    "no_survey": ("没有找到这份测评", "That survey was not found"),
    "nothing": ("现在没有需要您填写的测评", "There is no survey for you to answer right now"),
    "results": ("提交人数：<b>1</b>", "Respondents: <b>1</b>"),
    "withheld": ("提交满 5 人后才显示结果", "results are shown once 5 residents have submitted"),
    "menu_button": ("📝 满意度测评", "📝 Surveys"),
    "mydata": (
        "<b>满意度测评</b>：已提交 1 份（其中署名 0 份；匿名测评只记录“已提交”",
        "<b>Satisfaction surveys</b>: 1 submitted (0 with your name;",
    ),
}
LANGS = [
    Lang("zh_Hans", "zh-hans", {k: v[0] for k, v in TEXT.items()}),
    Lang("en", "en", {k: v[1] for k, v in TEXT.items()}),
]


async def people(app: App, locale: str) -> None:
    community = await app.services.communities.by_code("demo")
    assert community is not None
    for telegram_id, name in ((ORGANISER, "刘书记"), (RESIDENT, "王小明")):
        await app.services.residents.give_consent(telegram_id, name, locale)
        await app.services.residents.join(telegram_id, community.id, community.buildings[0].id)
    await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)


async def start_library_survey(app: App, lang: Lang) -> int:
    organiser = FakeChat(app.core, user_id=ORGANISER, first_name="刘书记", language_code=lang.telegram)
    await organiser.send("/surveys")
    await organiser.press(lang.t["new"])
    replies = await organiser.press(lang.t["library"])
    assert lang.t["created"] in replies[-1]
    surveys = await app.services.surveys.for_organiser(ORGANISER)
    return surveys[0].survey.id


@pytest.mark.parametrize("lang", LANGS, ids=lambda lang: lang.locale)
async def test_answer_with_pause_change_and_submit_once(app: App, lang: Lang) -> None:
    t = lang.t
    await people(app, lang.locale)
    survey_id = await start_library_survey(app, lang)
    chat = FakeChat(app.core, user_id=RESIDENT, first_name="王小明", language_code=lang.telegram)
    notices = Notices(app)
    invitation = await notices.deliver(chat)
    assert any(t["invited"] in text for text in invitation)

    replies = await chat.press(t["start"])
    assert t["q1"] in replies[-1] and t["anonymous"] in replies[-1] and t["env"] in replies[-1]
    assert chat.labels()[:5] == ["1", "2", "3", "4", "5"]
    await chat.press("4")
    await chat.press("5")
    replies = await chat.press(t["later"])
    assert t["paused"] in replies[-1]

    replies = await chat.send("/survey")  # the progress is in the database: go on at question 3
    assert t["partly"] in replies[-1]
    replies = await chat.press(t["go_on"])
    assert t["q3"] in replies[-1]
    await chat.press("3")
    await chat.press("4")
    await chat.press(t["skip"])  # how reported problems were handled: optional
    await chat.press(t["heard"])
    await chat.press(t["volunteer"])
    replies = await chat.press(t["quiz"])
    assert f"✅ {t['volunteer']}" in chat.labels() and f"✅ {t['quiz']}" in chat.labels()
    replies = await chat.press(t["done"])
    assert t["type"] in replies[-1]
    replies = await chat.send("长" * 201)
    assert t["too_long"] in replies[-1]
    replies = await chat.send(t["suggestion"])
    assert t["review"] in replies[-1] and t["suggestion"] in replies[-1]

    replies = await chat.press(t["change3"])
    assert t["q3"] in replies[-1]
    replies = await chat.press("5")
    assert t["review"] in replies[-1] and t["five"] in replies[-1]
    submit = app.router.codec.encode("sv", "submit", survey_id)
    replies = await chat.press(t["submit"])
    assert t["submitted"] in replies[-1] and t["points"] in replies[-1]
    replies = await chat.press_data(submit)
    assert t["twice"] in replies[-1]
    assert (await app.services.points.overview(RESIDENT)).balance == 3
    replies = await chat.send("/mydata")  # the right of access says what is kept of it
    assert t["mydata"] in replies[-1]

    organiser = FakeChat(app.core, user_id=ORGANISER, first_name="刘书记", language_code=lang.telegram)
    replies = await organiser.send(f"/stats surveys {survey_id}")
    # Anonymous and one respondent: the count, and nothing that would be that resident's answers.
    assert t["results"] in replies[-1] and t["withheld"] in replies[-1] and t["suggestion"] not in replies[-1]


@pytest.mark.parametrize("lang", LANGS, ids=lambda lang: lang.locale)
async def test_forged_buttons_get_a_clear_answer_and_change_nothing(app: App, lang: Lang) -> None:
    t = lang.t
    await people(app, lang.locale)
    chat = FakeChat(app.core, user_id=RESIDENT, first_name="王小明", language_code=lang.telegram)
    replies = await chat.send("/survey")
    assert t["nothing"] in replies[-1]
    await chat.send("/menu")  # the main menu's button opens the same list
    replies = await chat.press(t["menu_button"])
    assert t["nothing"] in replies[-1]
    survey_id = await start_library_survey(app, lang)
    encode = app.router.codec.encode
    replies = await chat.press_data(encode("sv", "open", survey_id + 50))
    assert t["no_survey"] in replies[-1]
    await chat.press_data(encode("sv", "open", survey_id))
    replies = await chat.press_data(encode("sv", "pick", survey_id, "env", 9))
    assert t["bad_answer"] in replies[-1]
    replies = await chat.press_data(encode("sv", "pick", survey_id, "env", 0))
    assert t["bad_answer"] in replies[-1]
    step = await app.services.surveys.start(RESIDENT, survey_id)
    assert step.progress.answers == {} and step.number == 1


async def test_reporter_rates_the_fix_once_and_the_report_figures_show_it(world: World) -> None:
    """After 销号 the reporter is asked (once) how satisfied they are; the answer is kept against the report and
    /stats reports shows it next to the handling time."""
    reporter = world.chat(RESIDENT_OF_REPORT, "王小明")
    await report(reporter)
    await accept(world)
    await resolve(world, await worker_chat(world))
    await reporter.press_data((await world.outbox.last(RESIDENT_OF_REPORT)).data("已解决"))
    ask = await world.outbox.find(RESIDENT_OF_REPORT, "您对这次处理满意吗")
    assert ask.labels() == ["1", "2", "3", "4", "5"] and ask.key == "sv:fix:1"
    await world.outbox.deliver(reporter)
    encode = world.app.router.codec.encode
    replies = await reporter.press_data(encode("sv", "fix", 1, 9))
    assert "这个答案无效" in replies[-1]
    replies = await reporter.press_data(encode("sv", "fix", 7, 4))
    assert "没有找到您的这条已销号反映" in replies[-1]
    replies = await reporter.press_data(ask.data("4"))
    assert "谢谢您的评价（4 分）" in replies[-1]
    replies = await reporter.send("长" * 201)
    assert "回答太长了" in replies[-1]
    replies = await reporter.send("处理很及时，谢谢网格员")
    assert "收到，谢谢您的反馈" in replies[-1]
    replies = await reporter.press_data(ask.data("1"))
    assert "您已经评价过这次处理了" in replies[-1]

    organiser = world.chat(ORGANISER, "刘书记")
    replies = await organiser.send("/stats reports")
    assert "对处理结果满意（4–5 分）：100%（1 人评价，平均 4.0 分）" in replies[-1]
