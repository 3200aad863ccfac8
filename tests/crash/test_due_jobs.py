"""Due report timers (durable jobs) delivered despite kills: every reminder and escalation reaches the staff group.

Each round, with the bot down, ten residents' reports are submitted (through the services, in the test) and their
timers made due: ten deadline reminders (reports/staff/overdue, "已到处理期限") and ten escalations
(reports/staff/escalated, "逾期未办结") — twenty jobs, all for the demo community's staff group. The bot is started,
its ticker takes them at once, and it gets SIGKILL — in odd rounds at a random moment within 1.5 s of its first
request, in even rounds the moment it sends its k-th message to the staff group (k random in 1..20). After the
last round the bot is started once more and left to go quiet.

Every job must have reached the group at least once, and repeats (a crash between a send and its bookkeeping) may
add at most one message per kill in all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from bot.domain.reports import Draft
from bot.sandbox.demo import STAFF_GROUP
from storage.types import UTCDateTime
from tests.support.crash import BUDGET, ROUNDS, BotProcess, CrashEnv, Kill, Launcher, crash_env, shown

pytestmark = pytest.mark.crash

REPORTS = 10  # per round: 10 reminders + 10 escalations
KINDS = {"remind": "已到处理期限", "escalate": "逾期未办结"}
KILL_WINDOW = 1.5


@dataclass(frozen=True)
class Due:
    round: int
    ticket: str
    kind: str  # "remind" or "escalate"


async def make_due(env: CrashEnv, round_: int) -> list[Due]:
    """Ten reports with their reminder and escalation due now (the bot is down meanwhile)."""
    tickets = []
    for n, resident in enumerate(env.residents[:REPORTS], 1):
        draft = Draft("other", f"楼道堆放杂物（第 {round_} 轮第 {n} 处）", skip_reason="other", address=f"{n}号楼楼道")
        outcome = await env.app.services.reports.submit(resident, draft)
        tickets.append(outcome.report.ticket)
    past = datetime.now(UTC) - timedelta(minutes=1)
    query = text(
        "UPDATE job SET due_at = :due WHERE done_at IS NULL AND kind IN ('report.remind', 'report.escalate')"
    ).bindparams(bindparam("due", type_=UTCDateTime()))
    async with env.app.engine.begin() as connection:
        await connection.execute(query, {"due": past})
    return [Due(round_, ticket, kind) for ticket in tickets for kind in KINDS]


def kill(env: CrashEnv, bot: BotProcess, number: int) -> Awaitable[Kill]:
    """Odd rounds: a random moment after start-up; even rounds: at the k-th message to the staff group."""
    if number % 2:
        return bot.kill_later(env.rng.uniform(0.0, KILL_WINDOW))
    mark, nth = len(env.emulator.requests), env.rng.randint(1, 2 * REPORTS)

    def sent() -> int:
        return env.emulator.count("sendMessage", STAFF_GROUP, since=mark) + env.emulator.count(
            "sendPhoto", STAFF_GROUP, since=mark
        )

    return bot.kill_when(lambda: sent() >= nth, 5.0)


async def run_rounds(env: CrashEnv, rounds: int) -> list[Due]:
    bot = env.bot()
    dues: list[Due] = []
    for number in range(1, rounds + 1):
        dues += await make_due(env, number)
        await bot.start()
        await bot.wait_first_request()
        await kill(env, bot, number)
        env.mark(f"round {number}: {bot.kills[-1]}")
    await bot.restart()
    await bot.settle()
    env.mark("restarted and quiet")
    await bot.stop()
    return dues


def check(env: CrashEnv, dues: list[Due]) -> None:
    group = [shown(m) for m in env.emulator.transcript(STAFF_GROUP)["messages"] if m["from_bot"]]
    problems: list[str] = []
    lost = repeated = 0
    for due in dues:
        got = sum(1 for t in group if due.ticket in t and KINDS[due.kind] in t)
        if got == 0:
            lost += 1
            problems.append(f"round {due.round} {due.ticket}: no {due.kind} ({KINDS[due.kind]}) in the staff group")
        repeated += max(0, got - 1)
    kills = len(env.kills)
    if repeated > kills:
        problems.append(f"{repeated} repeated reminders/escalations for {kills} kills (at most one per kill)")
    summary = (
        f"{len(dues)} due jobs over {kills} × SIGKILL: {lost} never delivered, {repeated} delivered twice; "
        f"{len(group)} bot messages in the staff group"
    )
    assert not problems, env.explain(summary + "\n" + "\n".join(problems[:60]))


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_due_reminders_delivered_despite_kill(
    tmp_path: Path, channel: str, seed: int, launcher: Launcher
) -> None:
    rounds = max(1, ROUNDS // 2)
    async with (
        asyncio.timeout(BUDGET),
        crash_env(tmp_path, channel, seed=seed, launch=launcher, residents=REPORTS) as env,
    ):
        dues = await run_rounds(env, rounds)
        check(env, dues)
