"""居民提案制 as transcripts in Chinese and in English: a resident submits a proposal (with a photo) and an organiser
rejects it with a reason the resident reads; residents support a proposal until it goes to the vote, vote, the
result is published (to the residents' group too), the organiser accepts it and adds a milestone that supporters
are told of; and bad input — forged buttons, an organiser's button pressed by a resident, a second support, a vote
after the window, another community's proposal, a too long title, a negative or absurd cost — gets a clear answer
and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.conversation.incoming import ChatType
from bot.domain.proposals import Draft, ProposalStatus, Rules
from bot.domain.roles import Role
from storage.db import make_sessionmaker
from storage.models import AuditLogRow
from storage.proposal_models import ProposalRow, ProposalSupportRow, ProposalVoteRow
from tests.handlers.test_reports import make_world
from tests.support.notices import Notices
from tests.support.reports import Clock, FakeDownloader, copy_db, jpeg_with_gps
from tests.support.transcript import FakeChat

ORGANISER, AUTHOR, FIRST, SECOND, STRANGER = 2002, 1001, 1002, 1003, 3001
GROUP = -100555
DRAFT = Draft("3号楼旁口袋公园改造", "把 3 号楼旁的空地改成口袋公园，增加座椅和遮阳棚，方便老人和孩子休息。", 50_000_00,
              "garden")  # fmt: skip

# What each transcript types, presses and expects: (Chinese, English).
TEXT = {
    "ask_title": ("请先输入提案的<b>标题</b>", "type a short <b>title</b>"),
    "ask_desc": ("请<b>说明</b>这个提案", "Now <b>describe</b> it"),
    "ask_photo": ("可以发一张<b>现场照片</b>", "You can send a <b>photo of the place</b>"),
    "photo_ok": ("照片已收到", "Photo received"),
    "garden": ("园林城市", "Garden city"),
    "confirm": ("请确认您的提案", "Please check your proposal"),
    "submit": ("提交提案", "Send the proposal"),
    "submitted": ("提案已提交", "Proposal sent!"),
    "reject": ("不通过", "Don't approve"),
    "ask_reason": ("不通过审核的原因", "why it is not approved"),
    "rejected_card": ("已退回这个提案", "The proposal was sent back"),
    "rejected": ("<b>未通过审核</b>", "<b>was not approved</b>"),
    "mydata": (
        "<b>居民提案</b>：提交 1 个，支持 0 个，投票 0 次\n• 3号楼旁口袋公园改造　未通过审核",
        "<b>Residents' proposals</b>: 1 written, 0 supported, 0 votes cast\n• 3号楼旁口袋公园改造  not approved",
    ),
    "accept": ("通过，开始征集支持", "Approve: collect support"),
    "opened": ("<b>已通过审核</b>，开始征集支持", "<b>is approved</b> and now collecting support"),
    "support": ("支持这个提案", "Support this proposal"),
    "supported": ("<b>已支持！</b>达到 2 人支持后", "<b>Supported!</b> At 2 supporters"),
    "vote_opened": ("您是第 2 位支持者，提案已进入投票", "You were supporter number 2"),
    "vote_open": ("<b>居民提案进入投票</b>", "<b>A residents' proposal goes to the vote</b>"),
    "for": ("赞成", "For"),
    "voted": ("<b>已投票</b>", "<b>Vote recorded.</b>"),
    "result": ("赞成 2 票，反对 0 票，弃权 0 票（共 2 票）", "2 for, 0 against, 0 abstaining (2 votes)"),
    "decide_yes": ("采纳", "Accept"),
    "accepted": ("<b>提案已采纳</b>", "<b>Proposal accepted</b>"),
    "add_milestone": ("添加进展", "Add progress"),
    "ask_milestone": ("有什么<b>新进展</b>", "What is the <b>progress</b>"),
    "milestone_card": ("进展已添加", "Progress added"),
    "milestone": ("<b>提案进展</b>", "<b>Progress</b>"),
    "add_expense": ("记录支出", "Record spending"),
    "spent": ("已支出 3200 元", "spent ¥3200"),
    "set_budget": ("调整计划资金", "Change the planned budget"),
    "budget_card": ("计划资金已更新并公示", "Planned budget updated"),
    "budget_changed": ("计划资金由 50000 元调整为 48000 元，目前已支出 3200 元", "from ¥50000 to ¥48000; ¥3200 spent"),
    "already": ("您已经支持过这个提案了", "You already support this proposal"),
    "vote_closed": ("投票已经截止", "the vote has closed"),
    "board": ("居民提案", "Residents' proposals"),
    "menu_button": ("💡 居民提案", "💡 Proposals"),
}
REASON = {"zh_Hans": "该地块属于市政绿地，社区无权改造", "en": "The land belongs to the city parks department"}
PURPOSE = {"zh_Hans": "购买长椅 4 张", "en": "four benches"}
NOTE = {"zh_Hans": "施工队已进场，预计两周完工", "en": "Work started; about two weeks to go"}


@dataclass
class World:
    app: App
    clock: Clock
    files: FakeDownloader
    outbox: Notices

    def chat(self, user_id: int, locale: str = "zh_Hans", chat_id: int | None = None) -> FakeChat:
        kind = ChatType.SUPERGROUP if chat_id else ChatType.PRIVATE
        language = "zh-hans" if locale == "zh_Hans" else "en"
        return FakeChat(self.app.core, user_id=user_id, chat_id=chat_id, chat_type=kind, language_code=language)

    async def count(self, table: type[ProposalSupportRow] | type[ProposalVoteRow] | type[ProposalRow]) -> int:
        sessions = make_sessionmaker(self.app.engine)
        async with sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def world(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[World]:
    db = copy_db(sqlite_template, tmp_path / "proposals.db")
    clock, files = Clock(), FakeDownloader()
    app = await make_world(db, tmp_path / "media", clock, files)
    s = app.services
    await s.communities.add("demo", "示范社区", [("1", "1号楼"), ("2", "2号楼")])
    await s.communities.add("other", "邻近社区", [("1", "1号楼")])
    community = await s.communities.by_code("demo")
    other = await s.communities.by_code("other")
    assert community is not None and other is not None
    await s.communities.link_group(GROUP, "demo", "示范社区居民群", "residents")
    files.add("p1", jpeg_with_gps())
    yield World(app, clock, files, Notices(app))
    await app.aclose()


async def join(world: World, telegram_id: int, locale: str, community: str = "demo") -> None:
    s = world.app.services
    found = await s.communities.by_code(community)
    assert found is not None
    await s.residents.give_consent(telegram_id, f"居民{telegram_id}", locale)
    await s.residents.join(telegram_id, found.id, found.buildings[0].id)
    if telegram_id == ORGANISER:
        await s.access.grant(ORGANISER, Role.ORGANISER, community, None)


def t(key: str, locale: str) -> str:
    zh, en = TEXT[key]
    return zh if locale == "zh_Hans" else en


LOCALES = ["zh_Hans", "en"]


@pytest.mark.parametrize("locale", LOCALES)
async def test_submit_then_rejected_with_a_reason_the_resident_reads(world: World, locale: str) -> None:
    await join(world, ORGANISER, locale)
    await join(world, AUTHOR, locale)
    author, organiser = world.chat(AUTHOR, locale), world.chat(ORGANISER, locale)
    assert t("ask_title", locale) in (await author.send("/propose"))[0]
    assert t("ask_desc", locale) in (await author.send(DRAFT.title))[0]
    assert t("ask_photo", locale) in (await author.send(DRAFT.description))[0]
    assert t("photo_ok", locale) in (await author.send_photo("p1"))[0]
    await author.send("5000")
    assert t("confirm", locale) in (await author.press(t("garden", locale)))[0]
    assert t("submitted", locale) in (await author.press(t("submit", locale)))[0]
    assert await world.count(ProposalRow) == 1
    review = await world.outbox.last(ORGANISER)
    assert review.template == "proposals/to_review" and DRAFT.title in review.text and review.photo is not None
    await world.outbox.deliver(organiser)
    assert t("ask_reason", locale) in (await organiser.press(t("reject", locale)))[0]
    assert t("rejected_card", locale) in (await organiser.send(REASON[locale]))[0]
    told = await world.outbox.last(AUTHOR)
    assert told.template == "proposals/rejected"
    assert t("rejected", locale) in told.text and REASON[locale] in told.text
    assert t("mydata", locale) in (await author.send("/mydata"))[-1]  # the right of access lists it


@pytest.mark.parametrize("locale", LOCALES)
async def test_empty_board_offers_a_button_that_starts_a_proposal(world: World, locale: str) -> None:
    """The board with nothing on it said to send /propose and had no button at all: a dead end from the menu."""
    await join(world, AUTHOR, locale)
    author = world.chat(AUTHOR, locale)
    await author.send("/proposals")
    new = "✍️ 提交提案" if locale == "zh_Hans" else "✍️ Make a proposal"
    assert author.labels() == [new]
    assert t("ask_title", locale) in (await author.press(new))[0]
    assert t("ask_desc", locale) in (await author.send(DRAFT.title))[0]


@pytest.mark.parametrize("locale", LOCALES)
async def test_support_vote_accept_and_milestone_reach_supporters(world: World, locale: str) -> None:
    for person in (ORGANISER, AUTHOR, FIRST, SECOND):
        await join(world, person, locale)
    organiser = world.chat(ORGANISER, locale)
    await organiser.send("/proposalrules 2 30 7")
    await world.app.services.proposals.submit(AUTHOR, DRAFT)
    await world.outbox.deliver(organiser)
    await organiser.press(t("accept", locale))
    assert t("opened", locale) in (await world.outbox.last(AUTHOR)).text
    first, second = world.chat(FIRST, locale), world.chat(SECOND, locale)
    assert t("board", locale) in (await first.send("/proposals"))[0]
    await first.press(DRAFT.title)
    assert t("supported", locale) in (await first.press(t("support", locale)))[0]
    await second.send("/menu")  # the main menu's button opens the same board
    assert t("board", locale) in (await second.press(t("menu_button", locale)))[-1]
    await second.press(DRAFT.title)
    assert t("vote_opened", locale) in (await second.press(t("support", locale)))[0]
    # Both supporters and the author are asked to vote, and the residents' group hears of it (without buttons).
    for person in (FIRST, SECOND, AUTHOR):
        assert (await world.outbox.last(person)).template == "proposals/vote_open"
    group_notice = await world.outbox.last(GROUP)
    assert group_notice.template == "proposals/vote_open" and group_notice.buttons == ()
    for chat in (first, second):
        await world.outbox.deliver(chat)
        assert t("voted", locale) in (await chat.press(t("for", locale)))[0]
    world.clock.advance(days=7)
    assert await world.app.run_due_jobs(world.clock()) >= 1
    result = await world.outbox.last(FIRST)
    assert result.template == "proposals/result" and t("result", locale) in result.text
    assert (await world.outbox.last(GROUP)).template == "proposals/result"
    await world.outbox.deliver(organiser)
    await organiser.press(t("decide_yes", locale))
    assert t("accepted", locale) in (await world.outbox.last(SECOND)).text
    assert t("ask_milestone", locale) in (await organiser.press(t("add_milestone", locale)))[0]
    assert t("milestone_card", locale) in (await organiser.send(NOTE[locale]))[0]
    for person in (FIRST, SECOND, AUTHOR):
        told = await world.outbox.last(person)
        assert told.template == "proposals/milestone" and NOTE[locale] in told.text
    # Money spent, made public to the supporters and on the card (资金使用公示).
    await organiser.press(t("add_expense", locale))
    assert t("spent", locale) in (await organiser.send(f"3200 {PURPOSE[locale]}"))[0]
    told = await world.outbox.last(FIRST)
    assert told.template == "proposals/expense" and PURPOSE[locale] in told.text
    # The planned budget changes, published too.
    await organiser.press(t("set_budget", locale))
    assert t("budget_card", locale) in (await organiser.send("48000"))[0]
    told = await world.outbox.last(SECOND)
    assert told.template == "proposals/budget" and t("budget_changed", locale) in told.text
    # The proposal's card shows the progress and the money to any resident.
    await first.send("/proposals")
    card = (await first.press(DRAFT.title))[0]
    assert NOTE[locale] in card and PURPOSE[locale] in card
    assert ("计划 48000 元，已支出 3200 元" if locale == "zh_Hans" else "Planned ¥48000, spent ¥3200") in card


async def test_bad_input_gets_a_clear_answer_and_changes_nothing(world: World) -> None:
    for person in (ORGANISER, AUTHOR, FIRST):
        await join(world, person, "zh_Hans")
    await join(world, STRANGER, "zh_Hans", community="other")
    author, first, stranger = world.chat(AUTHOR), world.chat(FIRST), world.chat(STRANGER)
    # Too long a title, a negative and an absurd cost: asked again, nothing saved.
    await author.send("/propose")
    assert "最多 60 个字，您输入了 61 个字" in (await author.send("长" * 61))[0]
    await author.send(DRAFT.title)
    await author.send(DRAFT.description)
    await author.press("跳过")
    assert "金额不能是负数" in (await author.send("-500"))[0]
    assert "金额太大了" in (await author.send("99999999999"))[0]
    assert "只写数字" in (await author.send("很多钱"))[0]
    await author.send("/cancel")
    assert await world.count(ProposalRow) == 0
    # A resident pressing an organiser's buttons (forged): refused, audited, nothing changes.
    proposal = await world.app.services.proposals.submit(AUTHOR, DRAFT)
    router = world.app.router
    answers = await first.press_data(router.codec.encode("pp", "acc", proposal.id))
    assert "只有社区工作人员" in answers[0]
    await first.press_data(router.codec.encode("pp", "rej", proposal.id))
    assert (
        first.answers[-1].alert
        and (await world.app.services.proposals.view(AUTHOR, proposal.id)).proposal.status is ProposalStatus.SUBMITTED
    )
    sessions = make_sessionmaker(world.app.engine)
    async with sessions() as session:
        refused = await session.scalar(
            select(func.count()).select_from(AuditLogRow).where(AuditLogRow.allowed.is_(False))
        )
    assert refused == 2
    assert "只有社区工作人员" in (await first.press_data(router.codec.encode("pp", "ms", proposal.id)))[0]
    assert "只有社区工作人员" in (await first.send("/proposalrules 1 1 1"))[0]
    assert (await world.app.services.proposals.rules_of(FIRST))[0] == world.app.services.proposals.defaults
    async with sessions() as session:
        actions = await session.scalars(select(AuditLogRow.action).where(AuditLogRow.allowed.is_(False)))
        assert sorted(actions.all()) == ["proposal.milestone", "proposal.review", "proposal.review", "proposal.rules"]
    # Garbage callback data: the stale-button answer.
    assert "按钮已失效" in (await first.press_data("1|pp.acc|x"))[0]
    await world.app.services.proposals.set_rules(ORGANISER, world.app.services.proposals.defaults)
    await world.app.services.proposals.review(ORGANISER, proposal.id, accept=True)
    support = router.codec.encode("pp", "sup", proposal.id)
    await first.press_data(support)
    assert "您已经支持过这个提案了" in (await first.press_data(support))[0]
    assert await world.count(ProposalSupportRow) == 1
    # Another community's resident: refused.
    assert "其他社区的提案" in (await stranger.press_data(support))[0]
    assert await world.count(ProposalSupportRow) == 1
    # A vote before the vote, a forged choice, and after the window.
    vote = router.codec.encode("pp", "vote", proposal.id, "for")
    assert "尚未进入投票" in (await first.press_data(vote))[0]
    assert "投票选项无效" in (await first.press_data(router.codec.encode("pp", "vote", proposal.id, "maybe")))[0]
    assert await world.count(ProposalVoteRow) == 0


async def test_vote_after_the_window_is_refused_in_english(world: World) -> None:
    for person in (ORGANISER, AUTHOR, FIRST):
        await join(world, person, "en")
    services = world.app.services.proposals
    await services.set_rules(ORGANISER, Rules(2, 30, 7))
    proposal = await services.submit(AUTHOR, DRAFT)
    await services.review(ORGANISER, proposal.id, accept=True)
    await services.support(FIRST, proposal.id)
    await services.support(AUTHOR, proposal.id)
    assert (await services.view(AUTHOR, proposal.id)).proposal.status is ProposalStatus.VOTING
    world.clock.advance(days=7, seconds=1)  # the window has closed; the job that counts has not run yet
    first = world.chat(FIRST, "en")
    vote = world.app.router.codec.encode("pp", "vote", proposal.id, "for")
    assert t("vote_closed", "en") in (await first.press_data(vote))[0]
    assert await world.count(ProposalVoteRow) == 0


async def test_propose_in_a_group_opens_the_private_chat_where_the_dialog_starts(world: World) -> None:
    await join(world, AUTHOR, "zh_Hans")
    in_group = world.chat(AUTHOR, chat_id=GROUP)
    await in_group.send("/propose")
    [[(_, url)]] = in_group.last().buttons
    assert url == "https://t.me/sicheng_bot?start=propose"
    private = world.chat(AUTHOR)
    assert t("ask_title", "zh_Hans") in (await private.send("/start propose"))[0]
