"""创建知识竞赛 end to end over HTTP against the emulator (with Telegram's flood limits on): an organiser starts a
group quiz, members answer the native quiz polls, the ticker moves the rounds on and posts the leaderboard; every
correct answer is credited exactly once and nothing is sent inside a 429 window.

Rounds are driven by calling ``App.tick`` with a moment past the open poll's close, so nothing waits for real time.
The background ticker of the stack keeps running with real time: it never finds a round due (their close lies in
the test's future), and when two tickers race for a round only one may move it (checked by ticking twice).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Settings
from bot.domain.points import Reason
from bot.sandbox.app import Sandbox, start_sandbox
from bot.sandbox.demo import RESIDENTS_GROUP
from bot.sandbox.emulator import Emulator
from bot.sandbox.errors import SandboxError
from bot.sandbox.limits import RateLimits
from bot.services.quiz_group import GRACE, MIN_SECONDS, GroupQuizService, VoteResult
from tests.support.outbox import settled
from tests.support.sandbox_user import SimResident

ORGANISER, NEWCOMER, AUNT, VOLUNTEER, WORKER = 1000006, 1000001, 1000002, 1000004, 1000005  # demo personas
ROUND = timedelta(seconds=MIN_SECONDS) + GRACE + timedelta(seconds=1)  # a tick this much later finds the poll closed


@dataclass
class QuizSpy:
    """Watches the group-quiz service: recording a poll's id and handling an answer show nothing in the chat."""

    recorded: set[str] = field(default_factory=set)
    votes: dict[str, list[VoteResult | None]] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def watch(self, service: GroupQuizService, monkeypatch: pytest.MonkeyPatch) -> None:
        poll_sent, vote = service.poll_sent, service.vote

        async def on_poll_sent(quiz_id: int, position: int, poll_id: str, message_id: int | None) -> None:
            await poll_sent(quiz_id, position, poll_id, message_id)
            self.recorded.add(poll_id)
            self.changed.set()

        async def on_vote(telegram_id: int, name: str, poll_id: str, *args: Any) -> VoteResult | None:
            result = await vote(telegram_id, name, poll_id, *args)
            self.votes.setdefault(poll_id, []).append(result)
            self.changed.set()
            return result

        monkeypatch.setattr(service, "poll_sent", on_poll_sent)
        monkeypatch.setattr(service, "vote", on_vote)

    async def poll_recorded(self, poll_id: str) -> None:
        await self._until(lambda: poll_id in self.recorded)

    async def answers_handled(self, poll_id: str, count: int) -> list[VoteResult]:
        """The outcomes once the bot has handled ``count`` answers to the poll, none of them ignored."""
        await self._until(lambda: len(self.votes.get(poll_id, [])) >= count)
        handled = self.votes[poll_id]
        assert len(handled) == count and None not in handled, handled
        return [r for r in handled if r is not None]

    async def _until(self, condition: Callable[[], bool], within: float = 5.0) -> None:
        async with asyncio.timeout(within):
            while not condition():
                self.changed.clear()
                await self.changed.wait()


async def tick(box: Sandbox, now: datetime) -> list[dict[str, Any]]:
    """One run of the periodic work at ``now``, delivered through the channel; the group's new bot messages."""
    seen = {m["message_id"] for m in box.emulator.transcript(RESIDENTS_GROUP)["messages"]}
    await box.app.tick(now)
    box.channel.inbox.dispatcher.wake()
    await settled(box.app)
    messages = box.emulator.transcript(RESIDENTS_GROUP)["messages"]
    return [m for m in messages if m["from_bot"] and m["message_id"] not in seen]


def vote(emulator: Emulator, user_id: int, poll: dict[str, Any], option: int) -> dict[str, Any]:
    return emulator.answer_poll(user_id, poll["id"], [option])


def wrong(poll: dict[str, Any]) -> int:
    return int(poll["correct_option_ids"][0] + 1) % len(poll["options"])


async def quiz_credits(box: Sandbox, user_id: int) -> Sequence[int]:
    overview = await box.app.services.points.overview(user_id)
    return [e.amount for e in overview.recent if e.reason is Reason.QUIZ]


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_group_quiz_polls_credit_each_correct_answer_once_and_end_with_leaderboard(
    sandbox_settings: Settings, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = Emulator(rate_limits=RateLimits())  # Telegram's limits: 1 message/s per chat, 20/min per group
    async with start_sandbox(sandbox_settings, port=0, channel=channel, fresh=True, emulator=emulator) as box:
        spy = QuizSpy()
        spy.watch(box.app.services.quiz.group, monkeypatch)
        organiser = SimResident(emulator, ORGANISER, RESIDENTS_GROUP)
        await organiser.send("/groupquiz garden 2 5")  # 5 s is below the minimum open period
        start = await organiser.wait_for("知识竞赛开始啦")
        assert f"共 2 题 · 每题 {MIN_SECONDS} 秒" in start["text"]
        (first,) = await emulator.wait_bot_messages(RESIDENTS_GROUP, 1, after=start["version"])
        poll = first["poll"]
        assert poll["type"] == "quiz" and not poll["is_anonymous"] and poll["open_period"] == MIN_SECONDS
        assert poll["question"].startswith("(1/2) ") and len(poll["correct_option_ids"]) == 1
        await spy.poll_recorded(poll["id"])  # the bot knows the poll's id: answers to it count from now on
        now = datetime.now(UTC)

        right = poll["correct_option_ids"][0]
        answered = vote(emulator, AUNT, poll, right)
        with pytest.raises(SandboxError, match="does not allow changing"):
            vote(emulator, AUNT, poll, right)  # a quiz takes one answer per person
        emulator.emit(emulator.default_bot.id, "poll_answer", answered)  # Telegram delivers her answer twice
        vote(emulator, VOLUNTEER, poll, wrong(poll))
        vote(emulator, WORKER, poll, right)
        vote(emulator, NEWCOMER, poll, right)  # not registered: owed until they join
        outcomes = await spy.answers_handled(poll["id"], 5)
        assert sorted((r.correct, r.registered, r.duplicate) for r in outcomes) == [
            (False, True, False),  # 小陈
            (True, False, False),  # 小李
            (True, True, False),  # 王阿姨
            (True, True, False),  # 老张
            (True, True, True),  # 王阿姨's answer delivered again: not recorded twice
        ]

        now += ROUND
        (second,) = await tick(box, now)
        assert second["poll"]["question"].startswith("(2/2) ")
        assert await tick(box, now) == []  # a second runner at the same moment finds nothing to do
        assert (await quiz_credits(box, AUNT), await quiz_credits(box, VOLUNTEER)) == ([1], [])

        poll = second["poll"]
        vote(emulator, AUNT, poll, wrong(poll))
        vote(emulator, WORKER, poll, poll["correct_option_ids"][0])
        await spy.answers_handled(poll["id"], 2)

        now += ROUND
        (board,) = await tick(box, now)
        lines = board["text"].splitlines()
        assert "知识竞赛结束 · 国家园林城市" in lines[0] and "共 2 题，4 人参与。" in lines
        # Most correct first, then fewest tries: 小李 (1 of 1) before 王阿姨 (1 of 2); names are masked.
        standings = [line for line in lines if "—— 答对" in line]
        assert standings == [
            "🥇 老** —— 答对 2 题",
            "🥈 小** —— 答对 1 题",
            "🥉 王** —— 答对 1 题",
            "4. 小** · 3号楼 —— 答对 0 题",  # two 小** told apart by building
        ]
        assert "有 1 位答对题目的朋友还没有加入社区" in board["text"]
        assert board["inline_keyboard"][0][0]["url"] == "https://t.me/sicheng_bot?start=cdemo"

        now += ROUND
        assert await tick(box, now) == []  # the quiz is over: later ticks post and credit nothing
        assert await quiz_credits(box, AUNT) == [1]
        assert await quiz_credits(box, WORKER) == [1, 1]
        assert await quiz_credits(box, VOLUNTEER) == []
        assert await box.app.services.points.check() == []
        assert emulator.flood_violations() == []
