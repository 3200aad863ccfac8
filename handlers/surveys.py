"""满意度测评: residents answer surveys in private chat, one question per message (buttons; typed text for a text
question), pause and go on later (/survey), change answers on the review and submit once. Organisers list their
surveys, start one from the library (/surveys) and read the results (/stats surveys). A reporter rates how their
verified report was handled (the notice's 1–5 buttons, then an optional comment)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.errors import Forbidden
from bot.domain.roles import Role
from bot.domain.surveys import MIN_GROUP, SCALE, Question, QuestionKind, Results, Survey, in_locale
from bot.services.surveys import OPEN, RATE_FIX, Step
from handlers import menu
from handlers.quiz_stats import stats_view

router = Router("sv")

TEXT_STATE = "sv.text"  # waiting for a typed answer: data survey, key
FIX_STATE = "sv.fixnote"  # waiting for a reporter's comment on a fix: data report
FIX_TTL = 30 * 60


# ---- residents -------------------------------------------------------------------------------------------------


@menu.feature("survey", needs=Needs.REGISTRATION)
@router.command("survey", needs=Needs.REGISTRATION, private_only=True, in_menu=True)
async def list_command(ctx: Ctx) -> Sequence[Action]:
    listed = await ctx.services.surveys.for_resident(ctx.user_id)
    items = [{"id": item.survey.id, "title": _title(ctx, item.survey), "state": item.state,
              "closes": _local(ctx, item.survey.closes_at)} for item in listed]  # fmt: skip
    buttons = [[_take(ctx, item.survey, item.state)] for item in listed if item.state != "submitted"]
    return [SendText("surveys/list", {"items": items}, buttons=keyboard(*buttons))]


@router.action(OPEN, needs=Needs.REGISTRATION)
async def open_survey(ctx: Ctx) -> Sequence[Action]:
    """From an invitation, a reminder, /survey or the pause: the question to answer now (or the review)."""
    step = await ctx.services.surveys.start(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), *await _show(ctx, step, edit=False)]


@router.callback("pick", int, str, int, needs=Needs.REGISTRATION)
async def pick(ctx: Ctx) -> Sequence[Action]:
    """A single-choice option or a scale value."""
    survey_id, key, value = int(ctx.args[0]), str(ctx.args[1]), int(ctx.args[2])
    step = await ctx.services.surveys.answer(ctx.user_id, survey_id, key, value)
    return [AnswerCallback(), *await _show(ctx, step, edit=True)]


@router.callback("tog", int, str, int, needs=Needs.REGISTRATION)
async def toggle(ctx: Ctx) -> Sequence[Action]:
    survey_id, key, option = int(ctx.args[0]), str(ctx.args[1]), int(ctx.args[2])
    step = await ctx.services.surveys.toggle(ctx.user_id, survey_id, key, option)
    return [AnswerCallback(), *await _show(ctx, step, edit=True)]


@router.callback("done", int, str, needs=Needs.REGISTRATION)
async def confirm(ctx: Ctx) -> Sequence[Action]:
    step = await ctx.services.surveys.confirm(ctx.user_id, int(ctx.args[0]), str(ctx.args[1]))
    return [AnswerCallback(), *await _show(ctx, step, edit=True)]


@router.callback("skip", int, str, needs=Needs.REGISTRATION)
async def skip(ctx: Ctx) -> Sequence[Action]:
    step = await ctx.services.surveys.skip(ctx.user_id, int(ctx.args[0]), str(ctx.args[1]))
    return [AnswerCallback(), *await _show(ctx, step, edit=True)]


@router.callback("chg", int, str, needs=Needs.REGISTRATION)
async def change(ctx: Ctx) -> Sequence[Action]:
    step = await ctx.services.surveys.change(ctx.user_id, int(ctx.args[0]), str(ctx.args[1]))
    return [AnswerCallback(), *await _show(ctx, step, edit=True)]


@router.callback("later", int, needs=Needs.REGISTRATION)
async def later(ctx: Ctx) -> Sequence[Action]:
    """Pause: the answers so far are kept in the database; /survey or the button goes on."""
    await ctx.clear_state()
    survey_id = int(ctx.args[0])
    context = {"state": "started", "title": ""}
    buttons = keyboard([Button("surveys.take", data=router.data(OPEN.action, survey_id), label_context=context)])
    return [AnswerCallback(), EditText("surveys/paused", {}, buttons=buttons)]


@router.callback("submit", int, needs=Needs.REGISTRATION)
async def submit(ctx: Ctx) -> Sequence[Action]:
    done = await ctx.services.surveys.submit(ctx.user_id, int(ctx.args[0]))
    await ctx.clear_state()
    award = done.award
    context = {
        "title": _title(ctx, done.survey),
        "anonymous": done.survey.anonymous,
        "credited": award.credited if award else 0,
        "capped": bool(award and award.capped_by),
    }
    return [AnswerCallback(), EditText("surveys/submitted", context)]


@router.step(TEXT_STATE, needs=Needs.REGISTRATION)
async def typed(ctx: Ctx) -> Sequence[Action]:
    """A typed answer to the text question being asked (too long or empty: said, and asked again)."""
    data = ctx.data
    text = ctx.incoming.text or ""
    step = await ctx.services.surveys.answer(ctx.user_id, int(data["survey"]), str(data["key"]), text)
    return await _show(ctx, step, edit=False)


async def _show(ctx: Ctx, step: Step, *, edit: bool) -> list[Action]:
    """The next question (a text question also waits for typing), or the review."""
    survey, question = step.survey, step.question
    if question is None:
        await ctx.clear_state()
        context, buttons = _review(ctx, step)
        template = "surveys/review"
    else:
        if question.kind is QuestionKind.TEXT:
            await ctx.set_state(TEXT_STATE, survey=survey.id, key=question.key)
        else:
            await ctx.clear_state()
        context, buttons = _question(ctx, step, question)
        template = "surveys/question"
    return [EditText(template, context, buttons=buttons) if edit else SendText(template, context, buttons=buttons)]


def _question(ctx: Ctx, step: Step, question: Question) -> tuple[dict[str, Any], Keyboard]:
    survey = step.survey
    ticked = step.progress.picking.get(question.key, [])
    rows: list[list[Button]] = []
    if question.kind is QuestionKind.SCALE:
        rows.append([Button("surveys.scale", data=router.data("pick", survey.id, question.key, v),
                            label_context={"value": v}) for v in SCALE])  # fmt: skip
    elif question.kind is QuestionKind.SINGLE:
        for i, option in enumerate(question.options):
            rows.append([Button("surveys.option", data=router.data("pick", survey.id, question.key, i),
                                label_context={"text": in_locale(option, ctx.locale)})])  # fmt: skip
    elif question.kind is QuestionKind.MULTI:
        for i, option in enumerate(question.options):
            rows.append([Button("surveys.tick", data=router.data("tog", survey.id, question.key, i),
                                label_context={"text": in_locale(option, ctx.locale), "on": i in ticked})])  # fmt: skip
        rows.append([Button("surveys.done", data=router.data("done", survey.id, question.key))])
    if not question.required:
        rows.append([Button("surveys.skip", data=router.data("skip", survey.id, question.key))])
    rows.append([Button("surveys.later", data=router.data("later", survey.id))])
    context = {
        "title": _title(ctx, survey),
        "number": step.number,
        "total": step.total,
        "text": in_locale(question.text, ctx.locale),
        "kind": question.kind.value,
        "required": question.required,
        "limit": question.limit,
        "anonymous": survey.anonymous,
        "first": step.number == 1 and not step.progress.answers,
    }
    return context, keyboard(*rows)


def _review(ctx: Ctx, step: Step) -> tuple[dict[str, Any], Keyboard]:
    survey = step.survey
    items, rows = [], []
    for n, question in enumerate(survey.questions, 1):
        items.append({"n": n, "text": in_locale(question.text, ctx.locale),
                      "answer": _answer(ctx, question, step.progress.answers.get(question.key))})  # fmt: skip
        rows.append(Button("surveys.change", data=router.data("chg", survey.id, question.key), label_context={"n": n}))
    buttons = [rows[i : i + 4] for i in range(0, len(rows), 4)]
    buttons.append([Button("surveys.submit", data=router.data("submit", survey.id))])
    buttons.append([Button("surveys.later", data=router.data("later", survey.id))])
    return {"title": _title(ctx, survey), "items": items, "anonymous": survey.anonymous}, keyboard(*buttons)


def _answer(ctx: Ctx, question: Question, value: Any) -> dict[str, Any]:
    """An answer as the review shows it: skipped, a scale value, option texts, or the text typed."""
    shown: dict[str, Any] = {"skipped": value is None, "scale": None, "options": [], "text": None}
    if value is None:
        return shown
    if question.kind is QuestionKind.SCALE:
        shown["scale"] = int(value)
    elif question.kind is QuestionKind.SINGLE:
        shown["options"] = [in_locale(question.options[int(value)], ctx.locale)]
    elif question.kind is QuestionKind.MULTI:
        shown["options"] = [in_locale(question.options[int(i)], ctx.locale) for i in value]
    else:
        shown["text"] = str(value)
    return shown


# ---- a reporter's satisfaction with the fix ----------------------------------------------------------------


@router.action(RATE_FIX, needs=Needs.REGISTRATION)
async def rate_fix(ctx: Ctx) -> Sequence[Action]:
    report_id, score = int(ctx.args[0]), int(ctx.args[1])
    saved = await ctx.services.surveys.rate_fix(ctx.user_id, report_id, score)
    if not saved:
        return [AnswerCallback("surveys/fix/already", alert=True)]
    await ctx.set_state(FIX_STATE, ttl=FIX_TTL, report=report_id)
    buttons = keyboard([Button("surveys.fix_no_comment", data=router.data("nofix"))])
    return [AnswerCallback(), EditText("surveys/fix/thanks", {"score": score}, buttons=buttons)]


@router.callback("nofix", needs=Needs.REGISTRATION)
async def no_comment(ctx: Ctx) -> Sequence[Action]:
    await ctx.clear_state()
    return [AnswerCallback(), EditText("surveys/fix/done", {})]


@router.step(FIX_STATE, needs=Needs.REGISTRATION)
async def fix_comment(ctx: Ctx) -> Sequence[Action]:
    await ctx.services.surveys.comment_fix(ctx.user_id, int(ctx.data["report"]), ctx.incoming.text or "")
    await ctx.clear_state()
    return [SendText("surveys/fix/done", {})]


# ---- organisers ----------------------------------------------------------------------------------------------


@router.command("surveys", role=Role.ORGANISER, private_only=True)
async def organiser_list(ctx: Ctx) -> Sequence[Action]:
    overviews = await ctx.services.surveys.for_organiser(ctx.user_id)
    items = [{"id": o.survey.id, "title": _title(ctx, o.survey), "status": o.survey.status.value,
              "participants": o.participants, "community": o.community, "anonymous": o.survey.anonymous,
              "opens": _local(ctx, o.survey.opens_at), "closes": _local(ctx, o.survey.closes_at)}
             for o in overviews]  # fmt: skip
    results = [Button("surveys.results", data=router.data("res", o.survey.id), label_context={"id": o.survey.id})
               for o in overviews[:8]]  # fmt: skip
    rows = [results[i : i + 4] for i in range(0, len(results), 4)]
    rows.append([Button("surveys.new", data=router.data("new"))])
    return [SendText("surveys/organiser/list", {"items": items}, buttons=keyboard(*rows))]


@router.callback("new", role=Role.ORGANISER)
async def new(ctx: Ctx) -> Sequence[Action]:
    """The library's surveys, for each community this person organises."""
    communities = await ctx.services.surveys.communities_of(ctx.user_id)
    if not communities:
        raise Forbidden(role=Role.ORGANISER.value)
    library = ctx.services.surveys.library
    rows = [[Button("surveys.template", data=router.data("tpl", key, c.id),
                    label_context={"title": in_locale(t.title, ctx.locale), "community": c.name,
                                   "several": len(communities) > 1})]
            for c in communities for key, t in sorted(library.items())]  # fmt: skip
    items = [{"title": in_locale(t.title, ctx.locale), "questions": len(t.questions), "days": t.days_open,
              "anonymous": t.anonymous} for _, t in sorted(library.items())]  # fmt: skip
    return [AnswerCallback(), SendText("surveys/organiser/library", {"items": items}, buttons=keyboard(*rows))]


@router.callback("tpl", str, int, role=Role.ORGANISER)
async def from_library(ctx: Ctx) -> Sequence[Action]:
    """Start a library survey now, for its usual number of days, for the whole community."""
    surveys = ctx.services.surveys
    draft = surveys.from_library(str(ctx.args[0]), int(ctx.args[1]))
    survey = await surveys.create(ctx.user_id, draft)
    context = {"id": survey.id, "title": _title(ctx, survey), "closes": _local(ctx, survey.closes_at),
               "anonymous": survey.anonymous, "questions": len(survey.questions)}  # fmt: skip
    return [AnswerCallback(), EditText("surveys/organiser/created", context)]


@router.callback("res", int, role=Role.ORGANISER)
async def results_button(ctx: Ctx) -> Sequence[Action]:
    results = await ctx.services.surveys.results(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), SendText("surveys/results", results_context(ctx, results))]


@stats_view("surveys")
async def stats_surveys(ctx: Ctx) -> Sequence[Action]:
    """``/stats surveys`` (the newest survey) or ``/stats surveys <id>``."""
    words = ctx.incoming.args.split()
    if len(words) > 1:
        if not words[1].isdigit():
            return [SendText("surveys/stats_usage", {})]
        survey_id = int(words[1])
    else:
        overviews = await ctx.services.surveys.for_organiser(ctx.user_id)
        if not overviews:
            return [SendText("surveys/organiser/list", {"items": []})]
        survey_id = overviews[0].survey.id
    results = await ctx.services.surveys.results(ctx.user_id, survey_id)
    return [SendText("surveys/results", results_context(ctx, results))]


def results_context(ctx: Ctx, results: Results) -> dict[str, Any]:
    """The figures of ``SurveyService.results`` as the /stats message shows them (texts in the reader's language)."""
    questions = []
    for r in results.questions:
        tallies = [{"label": in_locale(t.label, ctx.locale), "count": t.count, "share": t.share} for t in r.tallies]
        questions.append({"text": in_locale(r.question.text, ctx.locale), "kind": r.question.kind.value,
                          "answered": r.answered, "tallies": tallies, "index": r.index,
                          "satisfied": r.satisfied_share, "texts": list(r.texts)})  # fmt: skip
    buildings = [{"name": g.name, "respondents": g.respondents, "index": g.index, "satisfied": g.satisfied_share,
                  "shown": g.shown} for g in results.buildings]  # fmt: skip
    return {
        "id": results.survey.id,
        "title": _title(ctx, results.survey),
        "status": results.survey.status.value,
        "respondents": results.respondents,
        "index": results.index,
        "satisfied": results.satisfied_share,
        "questions": questions,
        "buildings": buildings,
        "hidden": results.hidden_groups,
        "withheld": results.withheld,
        "min_group": MIN_GROUP,
    }


def _take(ctx: Ctx, survey: Survey, state: str) -> Button:
    context = {"state": state, "title": _title(ctx, survey)}
    return Button("surveys.take", data=router.data(OPEN.action, survey.id), label_context=context)


def _title(ctx: Ctx, survey: Survey) -> str:
    return in_locale(survey.title, ctx.locale)


def _local(ctx: Ctx, moment: datetime) -> str:
    return ctx.services.surveys.local_time(moment)
