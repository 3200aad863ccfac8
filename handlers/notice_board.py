"""/notices and the main menu's 通知公告: residents read their community's recent notices; organisers see theirs with
counts and may cancel or stop them. Notice settings (opting out, quiet hours, tracks) are in handlers/settings.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.conversation.context import Ctx
from bot.conversation.replies import (
    Action,
    AnswerCallback,
    Button,
    EditText,
    Keyboard,
    SendPhoto,
    SendText,
    keyboard,
)
from bot.conversation.router import Needs, Router
from bot.domain.campaigns import Audience, Campaign, CampaignStatus, Recipient
from bot.domain.errors import Forbidden
from bot.domain.notices import Choice, Notice
from bot.domain.residents import Community
from bot.domain.telegram_html import EntityParseError, entities_to_html, escape, parse_html, utf16_len
from bot.services.campaigns import Overview
from handlers import menu, notices, settings

router = Router("nb")

SHOWN = 5  # notices listed by /notices
READABLE = 50  # how far back "read in full" looks for the notice pressed
MINE = 10  # notices in an organiser's list
EXCERPT = 160  # characters of a long notice shown in the list
EXCERPT_LINES = 4
SNIPPET = 48  # characters of a notice in an organiser's list
_CANCELLABLE = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING)
_SENTENCE_END = re.compile(r"[。！？!?；;…\n]|\.(?=\s)")
_SOFT_BREAK = re.compile(r"[，,、：:\s]")


# ---- residents ------------------------------------------------------------------------------------------------


@router.command("notices", needs=Needs.REGISTRATION, private_only=True, in_menu=True)
async def board_command(ctx: Ctx) -> Sequence[Action]:
    context, buttons = await _board(ctx)
    return [SendText("notices/board/list", context, buttons=buttons)]


@menu.feature("notices", needs=Needs.REGISTRATION)
async def from_menu(ctx: Ctx) -> Sequence[Action]:
    context, buttons = await _board(ctx)
    return [AnswerCallback(), SendText("notices/board/list", context, buttons=buttons)]


@router.callback("board", needs=Needs.REGISTRATION)
async def back_to_board(ctx: Ctx) -> Sequence[Action]:
    context, buttons = await _board(ctx)
    return [EditText("notices/board/list", context, buttons=buttons)]


@router.callback("read", int, needs=Needs.REGISTRATION)
async def read(ctx: Ctx) -> Sequence[Action]:
    """The whole notice, as it was sent — only one of the recent notices meant for this resident."""
    wanted = int(ctx.args[0])
    meant = await ctx.services.campaigns.for_resident(ctx.user_id, READABLE)
    found = next(((c, community) for c, community in meant if c.id == wanted), None)
    if found is None:
        return [AnswerCallback("notices/board/unavailable", alert=True)]
    campaign, community = found
    local = _sent_at(campaign).astimezone(ctx.services.campaigns.zone(community))
    facts = {"date": local.date().isoformat(), "weekday": local.isoweekday()}
    notice = ctx.services.campaigns.notice(campaign, community, Recipient(ctx.user_id, ctx.locale), facts)
    return [AnswerCallback(), _message(ctx, notice)]


async def _board(ctx: Ctx) -> tuple[dict[str, Any], Keyboard]:
    campaigns = ctx.services.campaigns
    received = await campaigns.for_resident(ctx.user_id, SHOWN)
    prefs = await campaigns.preferences(ctx.user_id)
    organiser = bool(await campaigns.communities_of(ctx.user_id))
    items, more = [], []
    for n, (campaign, community) in enumerate(received, 1):
        text, cut = ("", True) if campaign.template else _excerpt(campaign.body, EXCERPT, EXCERPT_LINES)
        full = cut or campaign.photo is not None or bool(campaign.buttons)
        items.append(
            {
                "n": n,
                "at": _local(_sent_at(campaign), campaigns.zone(community)),
                "track": campaign.track,
                "urgent": campaign.urgent,
                "text": text,
                "template": campaign.template,
                "photo": campaign.photo is not None,
                "full": full,
            }
        )
        if full:
            more.append(Button("notice_board.read", data=router.data("read", campaign.id), label_context={"n": n}))
    rows = [more[i : i + 3] for i in range(0, len(more), 3)]
    rows.append([settings.notices_button()])
    if organiser:
        rows.append([Button("notice_board.mine", data=router.data("mine"))])
    place = await menu.place(ctx)
    context = {
        "community": place["community"],
        "items": items,
        "off": prefs.notices_off,
        "tracks": sorted(prefs.tracks),
        "organiser": organiser,
    }
    return context, keyboard(*rows)


def _message(ctx: Ctx, notice: Notice) -> Action:
    buttons = keyboard(*([_button(ctx, c) for c in row] for row in notice.choices))
    if notice.photo:
        return SendPhoto(notice.photo, notice.template, notice.context, buttons=buttons)
    return SendText(notice.template, notice.context, buttons=buttons)


def _button(ctx: Ctx, choice: Choice) -> Button:
    if choice.url is not None:
        return Button(choice.label, url=choice.url, label_context=choice.label_context)
    if choice.start is not None:
        link = f"https://t.me/{ctx.settings.get('bot_username', '')}?start={choice.start}"
        return Button(choice.label, url=link, label_context=choice.label_context)
    assert choice.action is not None
    data = notices.router.encode_ref(choice.action, *choice.args)
    return Button(choice.label, data=data, label_context=choice.label_context)


# ---- organisers -----------------------------------------------------------------------------------------------


@router.callback("mine")
async def mine(ctx: Ctx) -> Sequence[Action]:
    """Recent and scheduled notices of the communities this person organises (refused and audited otherwise)."""
    overviews = await ctx.services.campaigns.for_organiser(ctx.user_id, MINE)
    communities = {c.id: c for c in await ctx.services.campaigns.communities_of(ctx.user_id)}
    items = [await _summary(ctx, o, communities) for o in overviews]
    opens = [_open_button(o.campaign) for o in overviews]
    rows = [opens[i : i + 3] for i in range(0, len(opens), 3)]
    rows.append([Button("notice_board.compose", data=router.data("compose"))])
    rows.append([Button("notice_board.back_board", data=router.data("board"))])
    context = {"items": items, "several": len(communities) > 1}
    return [EditText("notices/board/mine", context, buttons=keyboard(*rows))]


@router.callback("open", int)
async def open_notice(ctx: Ctx) -> Sequence[Action]:
    overview = await ctx.services.campaigns.overview(ctx.user_id, int(ctx.args[0]))
    return [await _detail(ctx, overview, None)]


@router.callback("cancel", int)
async def ask_cancel(ctx: Ctx) -> Sequence[Action]:
    """Cancelling a scheduled notice or stopping one that is sending asks once more."""
    overview = await ctx.services.campaigns.overview(ctx.user_id, int(ctx.args[0]))
    campaign = overview.campaign
    if campaign.status not in _CANCELLABLE:
        return [AnswerCallback("notices/board/not_cancellable", alert=True), await _detail(ctx, overview, None)]
    summary = {"c": await _summary(ctx, overview, {})}
    rows = [[Button("notice_board.confirm_cancel", data=router.data("cancelok", campaign.id),
                    label_context={"status": campaign.status.value})],
            [Button("notice_board.keep", data=router.data("open", campaign.id))]]  # fmt: skip
    return [EditText("notices/board/confirm_cancel", summary, buttons=keyboard(*rows))]


@router.callback("cancelok", int)
async def cancel(ctx: Ctx) -> Sequence[Action]:
    """Cancel or stop (the service checks the organiser role again and audits)."""
    campaign_id = int(ctx.args[0])
    before = await ctx.services.campaigns.overview(ctx.user_id, campaign_id)
    if before.campaign.status not in _CANCELLABLE:
        return [AnswerCallback("notices/board/not_cancellable", alert=True), await _detail(ctx, before, None)]
    await ctx.services.campaigns.cancel(ctx.user_id, campaign_id)
    after = await ctx.services.campaigns.overview(ctx.user_id, campaign_id)
    changed = "stopped" if before.campaign.status is CampaignStatus.SENDING else "cancelled"
    return [await _detail(ctx, after, changed)]


@router.callback("compose")
async def compose(ctx: Ctx) -> Sequence[Action]:
    """Writing a notice is its own dialog (/notice); point there."""
    if not await ctx.services.campaigns.communities_of(ctx.user_id):
        raise Forbidden(role="organiser")  # the core answers and audits it
    return [AnswerCallback(), SendText("notices/board/compose")]


def _open_button(campaign: Campaign) -> Button:
    context = {"id": campaign.id, "status": campaign.status.value}
    return Button("notice_board.open", data=router.data("open", campaign.id), label_context=context)


async def _detail(ctx: Ctx, overview: Overview, changed: str | None) -> EditText:
    campaign = overview.campaign
    context = {"c": await _summary(ctx, overview, {}), "changed": changed}
    rows: list[list[Button]] = []
    if campaign.status is CampaignStatus.SENDING:
        rows.append([Button("notice_board.refresh", data=router.data("open", campaign.id))])
    if campaign.status in _CANCELLABLE:
        rows.append([Button("notice_board.cancel", data=router.data("cancel", campaign.id),
                            label_context={"status": campaign.status.value})])  # fmt: skip
    rows.append([Button("notice_board.back_mine", data=router.data("mine"))])
    return EditText("notices/board/detail", context, buttons=keyboard(*rows))


async def _summary(ctx: Ctx, overview: Overview, communities: dict[int, Community]) -> dict[str, Any]:
    """What the organiser's list and a notice's page show of it; times in its community's zone."""
    campaign = overview.campaign
    community = communities.get(campaign.community_id)
    if community is None:
        community = await ctx.services.communities.get(campaign.community_id)
        communities[community.id] = community
    zone = ctx.services.campaigns.zone(community)
    return {
        "id": campaign.id,
        "status": campaign.status.value,
        "at": _local(_sent_at(campaign), zone),
        "started": campaign.started_at is not None,
        "finished": _local(campaign.finished_at, zone) if campaign.finished_at else None,
        "community": overview.community,
        "audience": _audience(campaign.audience, community),
        "track": campaign.track,
        "urgent": campaign.urgent,
        "paid": campaign.paid,
        "repeat": campaign.repeat_weekly,
        "template": campaign.template,
        "photo": campaign.photo is not None,
        "snippet": _excerpt(campaign.body, SNIPPET, 1)[0] if not campaign.template else "",
        "recipients": campaign.recipients,
        "counts": overview.counts.to_json(),
        "failures": dict(campaign.failures),
    }


def _audience(audience: Audience, community: Community) -> dict[str, Any]:
    names = [b.name for b in community.buildings if b.id in audience.buildings]
    return {
        "kind": audience.kind.value,
        "buildings": names,
        "track": audience.track,
        "role": audience.role.value if audience.role else None,
    }


# ---- helpers --------------------------------------------------------------------------------------------------


def _sent_at(campaign: Campaign) -> datetime:
    """When residents got it (or will): the start for a notice that went out, the planned time otherwise."""
    if campaign.status is CampaignStatus.SCHEDULED or campaign.started_at is None:
        return campaign.send_at
    return campaign.started_at


def _local(moment: datetime, zone: ZoneInfo) -> dict[str, Any]:
    local = moment.astimezone(zone)
    return {"year": local.year, "month": local.month, "day": local.day, "time": local.strftime("%H:%M")}


def _excerpt(html: str, limit: int, lines: int) -> tuple[str, bool]:
    """The start of a notice in Telegram-HTML (formatting kept, tags closed): at most ``lines`` lines and about
    ``limit`` characters, cut after a sentence or at least between words. Returns (html, whether it was cut)."""
    try:
        text, entities = parse_html(html)
    except EntityParseError:  # not valid Telegram HTML (it would not have been sent): show it as plain text
        text, entities = html, []
        html = escape(html)
    body = text.rstrip()
    cut = len(body)
    breaks = [m.start() for m in re.finditer("\n", body)]
    if len(breaks) >= lines:
        cut = breaks[lines - 1]
    if cut > limit:
        window = body[limit // 2 : limit]
        ends = [m.end() for m in _SENTENCE_END.finditer(window)]
        soft = [m.start() for m in _SOFT_BREAK.finditer(window)]
        cut = limit // 2 + (ends[-1] if ends else soft[-1] if soft else len(window))
    if cut >= len(body):
        return html, False
    head = body[:cut].rstrip()
    end16 = utf16_len(head)
    kept = [
        e | {"length": min(e["offset"] + e["length"], end16) - e["offset"]} for e in entities if e["offset"] < end16
    ]
    return entities_to_html(head, kept) + "…", True
