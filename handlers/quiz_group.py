"""Group quizzes: /groupquiz posts native quiz polls one at a time; answers are credited; a leaderboard ends it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.core import Deferred
from bot.conversation.replies import Action, SendQuizPoll, SendText
from bot.conversation.router import Router
from bot.domain.quiz import MIXED, TRACKS
from bot.domain.roles import Role
from bot.services.quiz_group import COUNT, MAX_COUNT, MAX_SECONDS, MIN_SECONDS, SECONDS, PollToSend

router = Router("gquiz")
POLL_ID_WAITS = (0.2, 0.5, 1.0, 2.0, 4.0)  # seconds before each new try; about 8 s in all
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
        return [SendText("quiz/group_usage", {"tracks": [*TRACKS, MIXED], "unknown": ctx.incoming.args.strip()})]
    track, count, seconds = parsed
    quiz, poll = await ctx.services.quiz.group.start(ctx.chat_id, ctx.user_id, track, count, seconds, ctx.locale)
    name = None if track == MIXED else ctx.services.quiz.library.track(track).name(ctx.locale)
    context: dict[str, Any] = {
        "track": name,
        "count": len(quiz.question_ids),
        "seconds": quiz.open_period,
        # What the organiser asked for, when it was brought within the limits (or the track has fewer questions).
        "asked_count": count if count != len(quiz.question_ids) else None,
        "asked_seconds": seconds if seconds != quiz.open_period else None,
        "max_count": MAX_COUNT,
        "min_seconds": MIN_SECONDS,
        "max_seconds": MAX_SECONDS,
    }
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
    if await group.vote(ctx.user_id, ctx.incoming.first_name, vote.poll_id, vote.option_ids, ctx.resident):
        return []
    # Telegram only sends answers to polls this bot posted, so an unknown id is one whose poll_sent has not been
    # stored yet (a fast voter during sendPoll's round trip): handle the answer again shortly rather than lose it.
    attempt = int(ctx.incoming.extra.get("attempt", "0"))
    if attempt < len(POLL_ID_WAITS):
        raise Deferred(POLL_ID_WAITS[attempt], f"poll {vote.poll_id} not known yet")
    return []


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
