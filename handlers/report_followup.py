"""The reporter's side after submitting: /myreports with history, and 回头看 — "is it fixed?" yes or no."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, Button, EditText, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.reports import Move
from bot.services.report_actions import FOLLOWUP_NO, FOLLOWUP_OK

router = Router("rf")
NOT_FIXED = "rf.nofix"


@router.command("myreports", needs=Needs.REGISTRATION, private_only=True, in_menu=True)
async def my_reports(ctx: Ctx) -> Sequence[Action]:
    """My reports and the ones I follow (+1), newest first, each with a details button."""
    mine = await ctx.services.reports.mine(ctx.user_id)
    reported = [await ctx.services.reports.context(r, ctx.locale) for r in mine.reported]
    followed = [await ctx.services.reports.context(r, ctx.locale) for r in mine.followed]
    buttons = [[Button("reports.btn.details", data=router.data("show", r.id), label_context={"ticket": r.ticket})]
               for r in mine.reported + mine.followed]  # fmt: skip
    return [SendText("reports/mine", {"reported": reported, "followed": followed}, buttons=keyboard(*buttons))]


@router.callback("show", int, needs=Needs.REGISTRATION)
async def show(ctx: Ctx) -> Sequence[Action]:
    """One report with its whole history (reporter, followers and staff only)."""
    report, history = await ctx.services.reports.detail(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.reports.context(report, ctx.locale)
    return [SendText("reports/detail", context | {"history": history})]


@router.action(FOLLOWUP_OK, needs=Needs.CONSENT)
async def fixed(ctx: Ctx) -> Sequence[Action]:
    """销号: the reporter confirms the fix; the question under the photo becomes the answer (no buttons left)."""
    outcome = await ctx.services.report_desk.verify(ctx.user_id, int(ctx.args[0]))
    context = {"ticket": outcome.report.ticket, "points": outcome.points}
    report = await ctx.services.reports.context(outcome.report, ctx.locale)
    answered = _answered(ctx, report, "fixed", None, None)  # the pressed message
    return [*answered, SendText("reports/verified", context)]


@router.action(FOLLOWUP_NO, needs=Needs.CONSENT)
async def not_fixed(ctx: Ctx) -> Sequence[Action]:
    """Not fixed: an optional photo, then the report goes back to the assignee."""
    report = await ctx.services.report_desk.check(ctx.user_id, int(ctx.args[0]), Move.REOPEN)
    # The question's message, answered once the report is reopened (the reporter may still turn back before that).
    await ctx.set_state(NOT_FIXED, report=report.id, question=ctx.incoming.callback_message_id,
                        on_photo=ctx.incoming.callback_on_photo)  # fmt: skip
    skip = keyboard([Button("reports.btn.no_photo", data=router.data("nophoto", report.id))])
    return [SendText("reports/ask_not_fixed_photo", buttons=skip)]


@router.step(NOT_FIXED, needs=Needs.CONSENT)
async def not_fixed_photo(ctx: Ctx) -> Sequence[Action]:
    file_id = (ctx.incoming.photo_file_ids or (ctx.incoming.document_file_id,))[-1]
    if file_id is None:
        return [SendText("reports/ask_not_fixed_photo")]
    key = await ctx.services.reports.add_photo(file_id, 0, ctx.incoming.file_size)
    return await _reopen(ctx, int(ctx.data["report"]), key)


@router.callback("nophoto", int, needs=Needs.CONSENT)
async def without_photo(ctx: Ctx) -> Sequence[Action]:
    return await _reopen(ctx, int(ctx.args[0]), None)


async def _reopen(ctx: Ctx, report_id: int, photo: str | None) -> list[Action]:
    question, on_photo = ctx.data.get("question"), bool(ctx.data.get("on_photo"))
    outcome = await ctx.services.report_desk.reopen(ctx.user_id, report_id, photo)
    await ctx.clear_state()
    context = await ctx.services.reports.context(outcome.report, ctx.locale)
    answered = _answered(ctx, context, "not_fixed", question, on_photo) if isinstance(question, int) else []
    return [*answered, SendText("reports/reopened", context)]


def _answered(
    ctx: Ctx, report: dict[str, object], answer: str, message_id: int | None, on_photo: bool | None
) -> list[Action]:
    """The 回头看 question (a photo's caption, or a text when the photo could not be sent) with the reporter's answer
    in its place, and without its buttons: ``message_id`` None is the message whose button was pressed; ``report``
    is the report's template context."""
    if message_id is None and ctx.incoming.callback_message_id is None:
        return []
    return [EditText("reports/notify/resolved", report | {"role": "reporter", "answer": answer},
                     message_id=message_id, caption=on_photo)]  # fmt: skip
