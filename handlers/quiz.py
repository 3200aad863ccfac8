"""Learning and private quizzes: the four tracks, knowledge cards, rounds with immediate feedback."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, Keyboard, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.quiz import MIXED
from bot.services.quiz import Feedback, Overview, QuestionView, TrackProgress
from handlers import menu

router = Router("quiz")
REGISTERED = Needs.REGISTRATION
LETTERS = "ABCDEF"


@router.command("quiz", needs=REGISTERED, private_only=True, in_menu=True)
async def quiz_command(ctx: Ctx) -> Sequence[Action]:
    return [_tracks(ctx, await ctx.services.quiz.overview(ctx.user_id), edit=False)]


@menu.feature("learn", needs=REGISTERED)
async def open_learn(ctx: Ctx) -> Sequence[Action]:
    """The main-menu entry: the tracks as a new message (the service refuses unregistered people)."""
    return [AnswerCallback(), _tracks(ctx, await ctx.services.quiz.overview(ctx.user_id), edit=False)]


@router.callback("tracks", needs=REGISTERED)
async def tracks(ctx: Ctx) -> Sequence[Action]:
    return [_tracks(ctx, await ctx.services.quiz.overview(ctx.user_id), edit=True)]


@router.callback("track", str, needs=REGISTERED)
async def track(ctx: Ctx) -> Sequence[Action]:
    """A track: what it is about, my progress, its knowledge cards."""
    progress, cards = await ctx.services.quiz.track(ctx.user_id, str(ctx.args[0]))
    key = progress.track.key
    rows = [[_start_button(ctx, key)]]
    rows += [
        [Button("quiz.card", router.data("card", c.id), label_context={"title": c.text(ctx.locale).title})]
        for c in cards
    ]
    rows.append([Button("quiz.back", router.data("tracks"))])
    context = {"progress": _progress(ctx, progress), "about": progress.track.description(ctx.locale)}
    return [EditText("quiz/track", context, keyboard(*rows))]


@router.callback("card", str, needs=REGISTERED)
async def card(ctx: Ctx) -> Sequence[Action]:
    found = ctx.services.quiz.card(str(ctx.args[0]))
    buttons = keyboard(
        [Button("quiz.card_quiz", router.data("cardq", found.id))],
        [Button("quiz.back_track", router.data("track", found.track))],
    )
    return [EditText("quiz/card", {"card": found.text(ctx.locale)}, buttons)]


@router.callback("start", str, needs=REGISTERED)
async def start(ctx: Ctx) -> Sequence[Action]:
    view = await ctx.services.quiz.start(ctx.user_id, str(ctx.args[0]))
    return [AnswerCallback(), _question(ctx, view)]


@router.callback("cardq", str, needs=REGISTERED)
async def start_from_card(ctx: Ctx) -> Sequence[Action]:
    """The button under a card: a round of the card's track, its questions first."""
    found = ctx.services.quiz.card(str(ctx.args[0]))
    view = await ctx.services.quiz.start(ctx.user_id, found.track, found.id)
    return [AnswerCallback(), _question(ctx, view)]


@router.callback("again", int, needs=REGISTERED)
async def again(ctx: Ctx) -> Sequence[Action]:
    """再来一轮 under a round's summary: pressed again, it points at the round already started."""
    view, started = await ctx.services.quiz.again(ctx.user_id, int(ctx.args[0]))
    if started:
        return [AnswerCallback(), _question(ctx, view)]
    where = {"number": view.position + 1, "total": view.total}
    return [AnswerCallback("quiz/already_started", where, alert=True)]


@router.callback("resume", needs=REGISTERED)
async def resume(ctx: Ctx) -> Sequence[Action]:
    return [AnswerCallback(), _question(ctx, await ctx.services.quiz.resume(ctx.user_id))]


@router.callback("ans", int, int, int, needs=REGISTERED)
async def answer(ctx: Ctx) -> Sequence[Action]:
    round_id, position, shown = (int(a) for a in ctx.args)
    return _feedback(ctx, await ctx.services.quiz.answer(ctx.user_id, round_id, position, shown))


@router.callback("tog", int, int, int, needs=REGISTERED)
async def toggle(ctx: Ctx) -> Sequence[Action]:
    round_id, position, shown = (int(a) for a in ctx.args)
    view = await ctx.services.quiz.toggle(ctx.user_id, round_id, position, shown)
    return [_question(ctx, view, edit=True)]


@router.callback("sub", int, int, needs=REGISTERED)
async def submit(ctx: Ctx) -> Sequence[Action]:
    round_id, position = (int(a) for a in ctx.args)
    return _feedback(ctx, await ctx.services.quiz.answer(ctx.user_id, round_id, position, None))


async def credit_after_join(ctx: Ctx) -> list[Action]:
    """Onboarding calls this once a resident has joined: group-quiz answers given before now count."""
    points = await ctx.services.quiz.credit_pending(ctx.user_id)
    return [SendText("quiz/pending_credited", {"points": points})] if points else []


# ---- building replies --------------------------------------------------------------------------


def _tracks(ctx: Ctx, overview: Overview, *, edit: bool) -> Action:
    rows = [
        [
            Button(
                "quiz.track",
                router.data("track", p.track.key),
                label_context={"emoji": p.track.emoji, "name": p.track.name(ctx.locale)},
            )
        ]
        for p in overview.tracks
    ]
    rows.append([_start_button(ctx, MIXED)])
    active = overview.active
    if active is not None:
        where = {"number": active.position + 1, "total": active.total}
        rows.insert(0, [Button("quiz.resume", router.data("resume"), label_context=where)])
    context = {"tracks": [_progress(ctx, p) for p in overview.tracks], "resumable": active is not None}
    return (EditText if edit else SendText)("quiz/tracks", context, keyboard(*rows))


def _question(ctx: Ctx, view: QuestionView, *, edit: bool = False) -> Action:
    context = {"view": view, "track": _track_name(ctx, view.track), "letters": LETTERS, "number": view.position + 1}
    return (EditText if edit else SendText)("quiz/question", context, _answer_buttons(view))


def _answer_buttons(view: QuestionView) -> Keyboard:
    """Options as buttons, or letters when options are long; multi-answer ones tick, then submit."""
    act = "tog" if view.multi else "ans"
    buttons = [
        Button(
            _label(view, i),
            router.data(act, view.round_id, view.position, i),
            label_context={"text": LETTERS[i] if view.numbered else option},
        )
        for i, option in enumerate(view.options)
    ]
    rows: list[list[Button]] = [buttons] if view.numbered else [[b] for b in buttons]
    if view.multi:
        rows.append([Button("quiz.submit", router.data("sub", view.round_id, view.position))])
    return keyboard(*rows)


def _label(view: QuestionView, shown: int) -> str:
    if not view.multi:
        return "plain"
    return "quiz.ticked" if shown in view.selected else "quiz.unticked"


def _feedback(ctx: Ctx, feedback: Feedback) -> list[Action]:
    actions: list[Action] = [AnswerCallback(), EditText("quiz/feedback", {"fb": feedback, "award": feedback.award})]
    if feedback.next is not None:
        actions.append(_question(ctx, feedback.next))
    elif feedback.summary is not None:
        summary = feedback.summary
        again = keyboard(
            [Button("quiz.again", router.data("again", summary.round_id))], [Button("quiz.back", router.data("tracks"))]
        )
        context = {"summary": summary, "track": _track_name(ctx, summary.track)}
        actions.append(SendText("quiz/summary", context, again))
    return actions


def _start_button(ctx: Ctx, track: str, label: str = "quiz.start") -> Button:
    context = {"count": ctx.services.quiz.round_size, "mixed": track == MIXED}
    return Button(label, router.data("start", track), label_context=context)


def _progress(ctx: Ctx, progress: TrackProgress) -> dict[str, Any]:
    info = progress.track
    return {
        "emoji": info.emoji,
        "name": info.name(ctx.locale),
        "answered": progress.answered,
        "total": progress.total,
        "due": progress.due,
        "knows": progress.knows,
    }


def _track_name(ctx: Ctx, key: str) -> str | None:
    return None if key == MIXED else ctx.services.quiz.library.track(key).name(ctx.locale)
