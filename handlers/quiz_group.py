"""Group quizzes: /groupquiz posts native quiz polls one at a time; answers are credited; a leaderboard ends it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from bot.conversation.context import Ctx
from bot.conversation.core import Core
from bot.conversation.incoming import ChatType, Incoming
from bot.conversation.replies import Action, Button, Keyboard, Outgoing, SendQuizPoll, SendText, keyboard
from bot.conversation.router import Router
from bot.domain.quiz import MIXED, TRACKS
from bot.domain.residents import make_deep_link
from bot.domain.roles import Role
from bot.services.quiz_group import COUNT, SECONDS, Leaderboard, PollToSend

router = Router("gquiz")
POLL_ID_WAITS = (0.05, 0.2, 0.5, 1.0)  # seconds; about 1.75 s in all
# Shorthands organisers type for a track (the keys work too).
ALIASES = {
    "文明": "civilised",
    "卫生": "sanitary",
    "园林": "garden",
    "食品": "food_safety",
    "食安": "food_safety",
    "综合": MIXED,
    "混合": MIXED,
    "food": "food_safety",
    "all": MIXED,
}


@router.command("groupquiz", role=Role.ORGANISER)
async def group_quiz(ctx: Ctx) -> Sequence[Action]:
    """``/groupquiz <track> [questions] [seconds]`` in a linked community group."""
    if ctx.incoming.is_private:
        return [SendText("quiz/group_only")]
    parsed = parse_args(ctx.incoming.args)
    if parsed is None:
        return [SendText("quiz/group_usage", {"tracks": [*TRACKS, MIXED]})]
    track, count, seconds = parsed
    quiz, poll = await ctx.services.quiz.group.start(ctx.chat_id, ctx.user_id, track, count, seconds, ctx.locale)
    name = None if track == MIXED else ctx.services.quiz.library.track(track).name(ctx.locale)
    context = {"track": name, "count": len(quiz.question_ids), "seconds": quiz.open_period}
    return [SendText("quiz/group_start", context), poll_action(poll)]


@router.on("poll_sent")
async def poll_sent(ctx: Ctx) -> Sequence[Action]:
    """The channel posted one of our polls: remember its id (tag ``gq:<quiz>:<position>``)."""
    kind, _, rest = ctx.incoming.extra.get("tag", "").partition(":")
    quiz_id, _, position = rest.partition(":")
    if kind == "gq" and quiz_id.isdigit() and position.isdigit():
        poll_id = ctx.incoming.extra["poll_id"]
        await ctx.services.quiz.group.poll_sent(int(quiz_id), int(position), poll_id, ctx.incoming.message_id)
    return []


@router.on("poll_answer")
async def poll_answer(ctx: Ctx) -> Sequence[Action]:
    """A vote on a quiz poll: recorded and credited silently (the leaderboard speaks at the end)."""
    vote = ctx.incoming.poll_answer
    if vote is None or not vote.option_ids:
        return []  # a retracted vote: the first answer stands
    group = ctx.services.quiz.group
    for pause in (*POLL_ID_WAITS, None):
        # Telegram only sends answers to polls this bot posted, so an unknown id is one whose poll_sent has not
        # been stored yet (a fast voter during sendPoll's round trip): wait for it rather than lose the vote.
        if await group.vote(ctx.user_id, ctx.incoming.first_name, vote.poll_id, vote.option_ids, ctx.resident):
            break
        if pause is not None:
            await asyncio.sleep(pause)
    return []


async def finish_due_rounds(core: Core, now: datetime) -> list[Outgoing]:
    """For the periodic runner: next polls and final leaderboards of group quizzes whose poll has closed.

    Deliver the result with ``bot.channels.base.deliver`` so posted polls reach ``poll_sent``.
    """
    out: list[Outgoing] = []
    bot = str(core.settings.get("bot_username", ""))
    for step in await core.services.quiz.group.due(now):
        target = Incoming(update_id=0, user_id=0, chat_id=step.chat_id, chat_type=ChatType.SUPERGROUP)
        if isinstance(step, PollToSend):
            out.extend(core.renderer.render([poll_action(step)], target, "zh_Hans"))
        else:
            out.extend(core.renderer.render([leaderboard_action(core, step, bot)], target, step.locale))
    return out


def parse_args(args: str) -> tuple[str, int, int] | None:
    """(track, questions, seconds) from the command's arguments; None when they make no sense."""
    parts = args.split()
    if not parts or len(parts) > 3 or not all(p.isdigit() for p in parts[1:]):
        return None
    track = ALIASES.get(parts[0], parts[0].lower())
    if track not in (*TRACKS, MIXED):
        return None
    numbers = [int(p) for p in parts[1:]] + [COUNT, SECONDS][len(parts) - 1 :]
    return track, numbers[0], numbers[1]


def poll_action(poll: PollToSend) -> SendQuizPoll:
    return SendQuizPoll(
        f"({poll.position + 1}/{poll.total}) {poll.question}",
        poll.options,
        (poll.correct_option,),
        explanation=poll.explanation,
        open_period=poll.open_period,
        chat_id=poll.chat_id,
        tag=poll.tag,
    )


def leaderboard_action(core: Core, board: Leaderboard, bot: str) -> Action:
    """The final standings; people still owed points get a button to join in a private chat."""
    library = core.services.quiz.library
    name = None if board.track == MIXED else library.track(board.track).name(board.locale)
    buttons: Keyboard = ()
    if board.owed and bot:
        url = f"https://t.me/{bot}?start={make_deep_link(board.community_code)}"
        buttons = keyboard([Button("quiz.claim", url=url)])
    return SendText("quiz/leaderboard", {"board": board, "track": name}, buttons=buttons, chat_id=board.chat_id)
