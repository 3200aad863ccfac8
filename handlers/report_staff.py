"""Handling reports (grid workers, organisers): accept and assign, reject with a reason, start, resolve with an
after-photo and a note (a short private dialog), close or reopen after a re-visit; hand a report to another grid
worker or move its deadline; ``/tasks``, a grid worker's own list.

Buttons arrive from the staff group or a private chat; the services re-check every time who may do what. The
people concerned are told through the outbox, and the report's card in the staff group is edited there too: a
handler only answers whoever pressed. When the person a report was just assigned to cannot be told (they never
opened the bot, or blocked it), the answer says so and carries the link that opens their ``/tasks``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.conversation.state import DialogState
from bot.domain.reports import TASKS_PAYLOAD, Move, RejectReason, Report
from bot.domain.residents import Resident
from bot.services.report_actions import (
    STAFF_CLOSE,
    STAFF_DEADLINE,
    STAFF_FIX,
    STAFF_REASSIGN,
    STAFF_REJECT,
    STAFF_REOPEN,
    STAFF_START,
    STAFF_TAKE,
)
from bot.services.report_notices import name_of, staff_choices
from bot.services.report_workflow import Outcome
from handlers.quiz_stats import stats_view

router = Router("rs")
AFTER, NOTE, DAY = "rs.after", "rs.note", "rs.day"
TASK_BUTTONS = 20  # a list longer than this still shows every task; only the first ones get a button


@router.action(STAFF_TAKE, needs=Needs.CONSENT)
async def take(ctx: Ctx) -> Sequence[Action]:
    """Accept & assign: who handles it?"""
    report, people = await ctx.services.report_desk.assignees(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), SendText("reports/staff/choose_assignee", {"ticket": report.ticket},
                                       buttons=_people(report, people, "assign"))]  # fmt: skip


@router.callback("assign", int, int, needs=Needs.CONSENT)
async def assign(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.accept(ctx.user_id, int(ctx.args[0]), int(ctx.args[1]))
    return [await _assigned(ctx, "reports/staff/accepted", outcome)]


@router.action(STAFF_REASSIGN, needs=Needs.CONSENT)
async def reassign(ctx: Ctx) -> Sequence[Action]:
    """Hand an accepted report to another grid worker of the community: to whom?"""
    report, people = await ctx.services.report_desk.reassign_choices(ctx.user_id, int(ctx.args[0]))
    context = {"ticket": report.ticket, "found": bool(people)}
    return [AnswerCallback(), SendText("reports/staff/choose_new_assignee", context,
                                       buttons=_people(report, people, "to"))]  # fmt: skip


@router.callback("to", int, int, needs=Needs.CONSENT)
async def reassign_to(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.reassign(ctx.user_id, int(ctx.args[0]), int(ctx.args[1]))
    return [await _assigned(ctx, "reports/staff/reassigned", outcome)]


@router.action(STAFF_DEADLINE, needs=Needs.CONSENT)
async def deadline(ctx: Ctx) -> Sequence[Action]:
    """Move the deadline: a few days more, or a day typed in private."""
    report, options = await ctx.services.report_desk.deadline_choices(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.report_desk.context(report, ctx.locale)
    context["options"] = [{"days": days, "until": until} for days, until in options]
    quick = [Button("reports.btn.extend", data=router.data("days", report.id, days), label_context={"days": days})
             for days, _ in options]  # fmt: skip
    typed = [Button("reports.btn.type_day", data=router.data("type", report.id))]
    return [AnswerCallback(), SendText("reports/staff/choose_deadline", context, buttons=keyboard(quick, typed))]


@router.callback("days", int, int, needs=Needs.CONSENT)
async def extend(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.move_deadline(ctx.user_id, int(ctx.args[0]), days=int(ctx.args[1]))
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
    return [EditText("reports/staff/deadline_set", context)]


@router.callback("type", int, needs=Needs.CONSENT)
async def type_day(ctx: Ctx) -> Sequence[Action]:
    """Ask for the day in private, wherever the button was pressed (a group is no place for a dialog)."""
    report = await ctx.services.report_desk.check(ctx.user_id, int(ctx.args[0]), Move.DEADLINE)
    await ctx.store.set(ctx.user_id, ctx.user_id, DialogState(DAY, {"report": report.id}))
    ask = SendText("reports/staff/ask_day", {"ticket": report.ticket}, chat_id=ctx.user_id)
    return [AnswerCallback(None if ctx.incoming.is_private else "reports/staff/see_private_day"), ask]


@router.step(DAY, needs=Needs.CONSENT)
async def day(ctx: Ctx) -> Sequence[Action]:
    """The typed day (a wrong one is explained and asked again: the dialog stays)."""
    report_id = int(ctx.data["report"])
    outcome = await ctx.services.report_desk.move_deadline(ctx.user_id, report_id, typed=ctx.incoming.text or "")
    await ctx.clear_state()
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
    return [SendText("reports/staff/deadline_set", context)]


@router.command("tasks", needs=Needs.CONSENT, private_only=True)
async def tasks(ctx: Ctx) -> Sequence[Action]:
    """``/tasks``: the reports assigned to me, overdue first, each with a button to open it."""
    return await task_list(ctx)


async def task_list(ctx: Ctx) -> list[Action]:
    """The list ``/tasks`` shows (also right after a grid worker opens the bot from the staff group's link)."""
    items = await ctx.services.report_desk.tasks(ctx.user_id, ctx.locale)
    rows = [[Button("reports.btn.task", data=router.data("task", t["id"]), label_context={"ticket": t["ticket"]})]
            for t in items[:TASK_BUTTONS]]  # fmt: skip
    return [SendText("reports/staff/tasks", {"tasks": items}, buttons=keyboard(*rows))]


@router.callback("task", int, needs=Needs.CONSENT)
async def task(ctx: Ctx) -> Sequence[Action]:
    """One task with the buttons for its next step."""
    report = await ctx.services.report_desk.task(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.report_desk.context(report, ctx.locale)
    buttons = keyboard(*[[Button(c.label, data=router.data(c.action.action, *c.args)) for c in row if c.action]
                         for row in staff_choices(report)])  # fmt: skip
    return [AnswerCallback(), SendText("reports/staff/task", context, buttons=buttons)]


@router.action(STAFF_REJECT, needs=Needs.CONSENT)
async def reject(ctx: Ctx) -> Sequence[Action]:
    report = await ctx.services.report_desk.check(ctx.user_id, int(ctx.args[0]), Move.REJECT)
    return [AnswerCallback(), SendText("reports/staff/choose_reason", {"ticket": report.ticket},
                                       buttons=_reasons(report.id))]  # fmt: skip


def _reasons(report_id: int, *, but: RejectReason | None = None) -> Keyboard:
    """One button per reason for not accepting a report (``but`` left out)."""
    return keyboard(*[[Button(f"reports.reject.{r.value}", data=router.data("why", report_id, r.value))]
                      for r in RejectReason if r is not but])  # fmt: skip


@router.callback("why", int, str, needs=Needs.CONSENT)
async def why(ctx: Ctx) -> Sequence[Action]:
    reason = RejectReason(str(ctx.args[1])) if str(ctx.args[1]) in set(RejectReason) else None
    if reason is None:
        return [AnswerCallback("errors/stale_button", alert=True)]
    if reason is RejectReason.DUPLICATE:
        report, originals = await ctx.services.report_desk.duplicates(ctx.user_id, int(ctx.args[0]))
        if not originals:  # nothing it could duplicate: the other reasons stay on the message
            return [EditText("reports/staff/choose_original", {"ticket": report.ticket, "found": False},
                             buttons=_reasons(report.id, but=RejectReason.DUPLICATE))]  # fmt: skip
        rows = [[Button("plain", data=router.data("dup", report.id, o.id), label_context={"text": o.ticket})]
                for o in originals]  # fmt: skip
        return [EditText("reports/staff/choose_original", {"ticket": report.ticket, "found": True},
                         buttons=keyboard(*rows))]  # fmt: skip
    return await _rejected(ctx, reason, None)


@router.callback("dup", int, int, needs=Needs.CONSENT)
async def duplicate(ctx: Ctx) -> Sequence[Action]:
    return await _rejected(ctx, RejectReason.DUPLICATE, int(ctx.args[1]))


@router.action(STAFF_START, needs=Needs.CONSENT)
async def start(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.start(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
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
    key = await ctx.services.reports.add_photo(file_id, 0, ctx.incoming.file_size)
    await ctx.set_state(NOTE, **ctx.data | {"photo": key, "file": file_id})
    return [SendText("reports/staff/ask_note")]


@router.step(NOTE, needs=Needs.CONSENT)
async def note(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    outcome = await ctx.services.report_desk.resolve(ctx.user_id, int(data["report"]), data["photo"],
                                                     ctx.incoming.text or "")  # fmt: skip
    await ctx.clear_state()
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
    return [SendText("reports/staff/resolved", context)]


@router.action(STAFF_CLOSE, needs=Needs.CONSENT)
async def close(ctx: Ctx) -> Sequence[Action]:
    """After a re-visit, an organiser confirms the fix (销号)."""
    outcome = await ctx.services.report_desk.verify(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
    return [AnswerCallback(), SendText("reports/staff/closed", context)]


@router.action(STAFF_REOPEN, needs=Needs.CONSENT)
async def reopen(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.report_desk.reopen(ctx.user_id, int(ctx.args[0]))
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
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


def _people(report: Report, people: list[Resident], action: str) -> tuple[tuple[Button, ...], ...]:
    """One button per grid worker (named by their Telegram id when the bot has no name for them)."""
    return keyboard(*[[Button("plain", data=router.data(action, report.id, p.id),
                              label_context={"text": name_of(p)})] for p in people])  # fmt: skip


async def _assigned(ctx: Ctx, template: str, outcome: Outcome) -> Action:
    """The answer to an assignment, true about whether the assignee can be told: when not, with the link that
    opens the bot on their ``/tasks`` (and a button for them, should they be in the group)."""
    context: dict[str, Any] = await ctx.services.report_desk.context(outcome.report, ctx.locale)
    bot = ctx.settings.get("bot_username", "")
    link = f"https://t.me/{bot}?start={TASKS_PAYLOAD}" if bot else None
    context |= {"reached": outcome.reached, "who": outcome.assignee, "link": link}
    buttons = keyboard([Button("reports.btn.open_tasks", url=link)]) if link and not outcome.reached else ()
    return EditText(template, context, buttons=buttons)


async def _rejected(ctx: Ctx, reason: RejectReason, original: int | None) -> list[Action]:
    outcome = await ctx.services.report_desk.reject(ctx.user_id, int(ctx.args[0]), reason, original)
    context = await ctx.services.report_desk.context(outcome.report, ctx.locale)
    return [EditText("reports/staff/rejected", context)]
