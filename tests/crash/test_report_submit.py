"""确认提交 tapped around a kill: one report per intent, and the resident sees its ticket.

Each round, five residents bring a 随手拍 draft to its confirmation screen with the bot running (/report → 其他 →
跳过拍照 → 其他原因 → a typed address → a description naming the round → 显示我的称呼). All five tap 确认提交 and the
bot gets SIGKILL — in odd rounds at a random moment in the next 1.5 s, in even rounds the moment it makes its k-th
Bot API request after the taps (k random: in the middle of answering them). It is restarted and left to go quiet;
a resident whose confirmation still shows the button and who got no alert taps 确认提交 again, as a person would.

Then, per intent: exactly one report with that description in the database, and the confirmation shows
已提交，编号 with that report's ticket.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.crash import (
    BUDGET,
    ROUNDS,
    SUBMITTED,
    BotProcess,
    CrashEnv,
    Kill,
    Launcher,
    Person,
    crash_env,
    describe,
    labels,
    shown,
    skip_photos,
    start_report,
)

pytestmark = pytest.mark.crash

PEOPLE = 5
KILL_WINDOW = 1.5


@dataclass
class Intent:
    resident: int
    round: int
    description: str
    message_id: int = 0
    query_id: str = ""
    retapped: bool = False


async def prepare(person: Person, intent: Intent) -> None:
    menu = await start_report(person, "其他")
    await skip_photos(person, menu)
    intent.message_id = await describe(person, f"{intent.round}号楼北门", intent.description)


def kill(env: CrashEnv, bot: BotProcess, number: int) -> Awaitable[Kill]:
    """Odd rounds: at a random moment; even rounds: at the bot's k-th request after the taps, k random in 1..3·taps."""
    if number % 2:
        return bot.kill_later(env.rng.uniform(0.0, KILL_WINDOW))
    mark, nth = len(env.emulator.requests), env.rng.randint(1, 3 * PEOPLE)
    return bot.kill_when(lambda: len(env.emulator.requests) - mark >= nth, KILL_WINDOW)


async def run_rounds(env: CrashEnv, rounds: int) -> list[Intent]:
    people = [Person(env.emulator, r) for r in env.residents[:PEOPLE]]
    bot = env.bot()
    await bot.restart()
    intents: list[Intent] = []
    for number in range(1, rounds + 1):
        if not bot.alive:
            await bot.restart()
        batch = [
            Intent(p.user_id, number, f"楼道里堆满杂物，堵住了通道（居民 {p.user_id} 第 {number} 轮）") for p in people
        ]
        await asyncio.gather(*(prepare(p, i) for p, i in zip(people, batch, strict=True)))
        for person, intent in zip(people, batch, strict=True):
            intent.query_id = person.press(intent.message_id, "确认提交")
        await kill(env, bot, number)
        await bot.restart()
        await bot.settle()
        env.mark(f"round {number}: {len(people)} taps, {bot.kills[-1]}, restarted and quiet")
        for person, intent in zip(people, batch, strict=True):
            view = person.message(intent.message_id)
            alerted = env.emulator.callback_answer(intent.query_id).get("text")
            if view is not None and "确认提交" in " ".join(labels(view)) and not alerted:
                intent.retapped = True
                intent.query_id = person.press(intent.message_id, "确认提交")
        if any(i.retapped for i in batch):
            await bot.settle()
        intents += batch
    await bot.stop()
    return intents


async def check(env: CrashEnv, intents: list[Intent]) -> None:
    rows = await env.sql("SELECT description, ticket FROM report")
    tickets: dict[str, list[str]] = defaultdict(list)
    for description, ticket in rows:
        tickets[description].append(ticket)
    problems: list[str] = []
    none = doubled = unseen = 0
    for intent in intents:
        where = f"resident {intent.resident} round {intent.round}{' (tapped twice)' if intent.retapped else ''}"
        made = tickets.get(intent.description, [])
        view = Person(env.emulator, intent.resident).message(intent.message_id)
        text = shown(view) if view else "(message gone)"
        found = SUBMITTED.search(text)
        if not made:
            none += 1
        elif len(made) > 1:
            doubled += len(made) - 1
        if len(made) != 1:
            problems.append(
                f"{where}: {len(made)} reports {made} for one submit intent; the screen shows {text[:50]!r}"
            )
        if found is None or found.group(1) not in made:
            unseen += 1
            alert = env.emulator.callback_answer(intent.query_id).get("text")
            problems.append(f"{where}: sees {text[:50]!r} (alert {alert!r}), not the ticket of {made}")
    kills = len(env.kills)
    summary = (
        f"{len(intents)} submit intents, {kills} × SIGKILL, {sum(i.retapped for i in intents)} tapped again: "
        f"{none} without a report, {doubled} extra reports, {unseen} residents not shown their ticket"
    )
    assert not problems, env.explain(summary + "\n" + "\n".join(problems[:60]))


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_report_submit_retried_after_kill_creates_one_report(
    tmp_path: Path, channel: str, seed: int, launcher: Launcher
) -> None:
    async with (
        asyncio.timeout(BUDGET),
        crash_env(tmp_path, channel, seed=seed, launch=launcher, residents=PEOPLE) as env,
    ):
        intents = await run_rounds(env, ROUNDS)
        await check(env, intents)
