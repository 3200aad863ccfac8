"""Handling reports (grid workers, organisers): accept and assign, reject with a reason, start, resolve with an
after-photo and a note (a short private dialog), close or reopen after a re-visit.

Buttons arrive from the staff group or a private chat; the services re-check every time who may do what. The
people concerned are told through the outbox, and the report's card in the staff group is edited there too: a
handler only answers whoever pressed.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.conversation.state import DialogState
from bot.domain.reports import Move, RejectReason
from bot.services.report_actions import STAFF_CLOSE, STAFF_FIX, STAFF_REJECT, STAFF_REOPEN, STAFF_START, STAFF_TAKE
from handlers.quiz_stats import stats_view

router = Router("rs")
AFTER, NOTE = "rs.after", "rs.note"


@router.action(STAFF_TAKE, needs=Needs.CONSENT)
async def take(ctx: Ctx) -> Sequence[Action]:
    """Accept & assign: who handles it?"""
    report, people = await ctx.services.report_desk.assignees(ctx.user_id, int(ctx.args[0]))
    rows = [[Button("plain", data=router.data("assign", report.id, p.id),
                    label_context={"text": p.display_name or str(p.id)})] for p in people]  # fmt: skip
    return [AnswerCallback(), SendText("reports/staff/choose_assignee", {"ticket": report.ticket},
                                       buttons=keyboard(*rows))]  # fmt: skip


@router.callback("assign", int, int, needs=Needs.CONSENT)
async def assign(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.accept(ctx.user_id, int(ctx.args[0]), int(ctx.args[1]))
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [EditText("reports/staff/accepted", context)]


@router.action(STAFF_REJECT, needs=Needs.CONSENT)
async def reject(ctx: Ctx) -> Sequence[Action]:
    report = await ctx.services.report_desk.check(ctx.user_id, int(ctx.args[0]), Move.REJECT)
    rows = [[Button(f"reports.reject.{r.value}", data=router.data("why", report.id, r.value))] for r in RejectReason]
    return [AnswerCallback(), SendText("reports/staff/choose_reason", {"ticket": report.ticket},
                                       buttons=keyboard(*rows))]  # fmt: skip


@router.callback("why", int, str, needs=Needs.CONSENT)
async def why(ctx: Ctx) -> Sequence[Action]:
    reason = RejectReason(str(ctx.args[1])) if str(ctx.args[1]) in set(RejectReason) else None
    if reason is None:
        return [AnswerCallback("errors/stale_button", alert=True)]
    if reason is RejectReason.DUPLICATE:
        report, originals = await ctx.services.report_desk.duplicates(ctx.user_id, int(ctx.args[0]))
        rows = [[Button("plain", data=router.data("dup", report.id, o.id), label_context={"text": o.ticket})]
                for o in originals]  # fmt: skip
        return [EditText("reports/staff/choose_original", {"ticket": report.ticket, "found": bool(originals)},
                         buttons=keyboard(*rows))]  # fmt: skip
    return await _rejected(ctx, reason, None)


@router.callback("dup", int, int, needs=Needs.CONSENT)
async def duplicate(ctx: Ctx) -> Sequence[Action]:
    return await _rejected(ctx, RejectReason.DUPLICATE, int(ctx.args[1]))


@router.action(STAFF_START, needs=Needs.CONSENT)
async def start(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.start(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [AnswerCallback(), SendText("reports/staff/started", context)]


@router.action(STAFF_FIX, needs=Needs.CONSENT)
async def fix(ctx: Ctx) -> Sequence[Action]:
    """Resolve: ask for the after-photo in private, wherever the button was pressed."""
    report = await ctx.services.report_desk.check(ctx.user_id, int(ctx.args[0]), Move.RESOLVE)
    await ctx.store.set(ctx.user_id, ctx.user_id, DialogState(AFTER, {"report": report.id}))
    ask = SendText("reports/staff/ask_after_photo", {"ticket": report.ticket}, chat_id=ctx.user_id)
    return [AnswerCallback(None if ctx.incoming.is_private else "reports/staff/see_private"), ask]


@router.step(AFTER, needs=Needs.CONSENT)
async def after_photo(ctx: Ctx) -> Sequence[Action]:
    file_id = (ctx.incoming.photo_file_ids or (ctx.incoming.document_file_id,))[-1]
    if file_id is None:
        return [SendText("reports/staff/ask_after_photo", {"ticket": None})]
    key = await ctx.services.reports.add_photo(file_id, 0)
    await ctx.set_state(NOTE, **ctx.data | {"photo": key, "file": file_id})
    return [SendText("reports/staff/ask_note")]


@router.step(NOTE, needs=Needs.CONSENT)
async def note(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    outcome = await ctx.services.report_desk.resolve(ctx.user_id, int(data["report"]), data["photo"],
                                                     ctx.incoming.text or "")  # fmt: skip
    await ctx.clear_state()
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [SendText("reports/staff/resolved", context)]


@router.action(STAFF_CLOSE, needs=Needs.CONSENT)
async def close(ctx: Ctx) -> Sequence[Action]:
    """After a re-visit, an organiser confirms the fix (销号)."""
    outcome = await ctx.services.report_desk.verify(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [AnswerCallback(), SendText("reports/staff/closed", context)]


@router.action(STAFF_REOPEN, needs=Needs.CONSENT)
async def reopen(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.reopen(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [AnswerCallback(), SendText("reports/staff/reopened_done", context)]


@stats_view("reports")
async def figures(ctx: Ctx) -> Sequence[Action]:
    """``/stats reports [days]``: the 问题台账 figures of the organiser's community (last 30 days by default)."""
    words = ctx.incoming.args.split()[1:2]
    days = int(words[0]) if words and words[0].isdigit() and 0 < int(words[0]) <= 3660 else 30
    since = ctx.services.report_stats.since_days(days)
    community, found = await ctx.services.report_stats.for_organiser(ctx.user_id, since, None)
    names = {c.key: c.name(ctx.locale) for c in ctx.services.reports.policy.categories}
    return [SendText("reports/stats", {"community": community.name, "days": days, "f": found, "names": names})]


async def _rejected(ctx: Ctx, reason: RejectReason, original: int | None) -> list[Action]:
    outcome = await ctx.services.report_desk.reject(ctx.user_id, int(ctx.args[0]), reason, original)
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    return [EditText("reports/staff/rejected", context)]
