"""Twenty residents tap 确认兑换 at once while the bot is killed; after every restart nothing is lost or doubled.

Before the rounds, with the bot running undisturbed, every resident opens one confirmation screen per round through
the real dialog (/points → 🎁 兑换奖励 → 测试券 · 1 分), so each round's taps are fresh redemptions on their own
messages. The reward costs 1 point and has no stock or per-person limit, and everyone has 100 points: every tap
must succeed exactly once. In each round the bot is started, all twenty tap, and at a random moment in the next
two seconds the bot gets SIGKILL (or SIGTERM); after the last round it is started once more and left to go quiet.

Then, per tap: the confirmation message shows 兑换成功 with a code (the person got their answer), the code is one of
theirs in the database, and its QR photo arrived; per resident: exactly as many redemptions as taps; and the
ledger check (``sicheng points check``) is clean.
"""

from __future__ import annotations

import asyncio
import re
import signal
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.crash import (
    BUDGET,
    REWARD_COST,
    REWARD_NAME,
    ROUNDS,
    TERM_GRACE,
    CrashEnv,
    Launcher,
    Person,
    crash_env,
    kill_delays,
    shown,
    tap_rounds,
)

pytestmark = pytest.mark.crash

CODE = re.compile(r"兑换码：\s*([A-Z0-9]{4}-[A-Z0-9]{4})")
QR_CODE = re.compile(r"^兑换码\s*([A-Z0-9]{4}-[A-Z0-9]{4})")
KILL_WINDOW = 2.0  # seconds after the taps


@dataclass
class Tap:
    resident: int
    round: int
    message_id: int
    query_id: str = ""


async def open_confirmations(person: Person, rounds: int) -> list[int]:
    """One confirmation screen per round, each on its own message, through the real dialog."""
    screens = []
    for _ in range(rounds):
        version = person.send("/points")
        overview = await person.wait_text("我的文明积分", after=version)
        await person.tap_and_wait(overview["message_id"], "兑换奖励", "点击奖励查看详情")
        item = await person.tap_and_wait(overview["message_id"], f"{REWARD_NAME} · {REWARD_COST} 分", "确认兑换吗")
        assert item["message_id"] == overview["message_id"]
        screens.append(item["message_id"])
    return screens


async def run_rounds(env: CrashEnv, sig: signal.Signals, rounds: int) -> list[Tap]:
    people = [Person(env.emulator, r) for r in env.residents]
    bot = env.bot()
    await bot.restart()
    env.mark("bot polling")
    screens = await asyncio.gather(*(open_confirmations(p, rounds) for p in people))
    env.mark(f"{len(people)} × {rounds} confirmation screens open")
    await bot.settle()
    delays = kill_delays(env.rng, rounds, KILL_WINDOW)
    return await tap_rounds(
        env, bot, people, screens, "确认兑换", delays, sig,
        lambda person, number, message: Tap(person.user_id, number + 1, message),
    )  # fmt: skip


async def check(env: CrashEnv, taps: list[Tap], sig: signal.Signals) -> None:
    rows = await env.sql(
        "SELECT r.telegram_id, d.code FROM redemption d JOIN points_account a ON a.id = d.account_id "
        "JOIN resident r ON r.id = a.resident_id WHERE d.reward_id = :reward",
        reward=env.reward_id,
    )
    codes: dict[int, list[str]] = defaultdict(list)
    for telegram_id, code in rows:
        codes[telegram_id].append(code)
    problems: list[str] = []
    unanswered = refused = wrong_code = 0
    for tap in taps:
        person = Person(env.emulator, tap.resident)
        view = person.message(tap.message_id)
        text = shown(view) if view else "(message gone)"
        found = CODE.search(text)
        where = f"resident {tap.resident} round {tap.round}"
        if "兑换成功" in text and found:
            if found.group(1).replace("-", "") not in codes[tap.resident]:
                wrong_code += 1
                problems.append(f"{where}: shows code {found.group(1)}, not one of theirs in the database")
            continue
        answer = env.emulator.callback_answer(tap.query_id)
        if answer["answered"] and answer.get("text"):
            refused += 1
            problems.append(f"{where}: refused with {answer['text']!r} (message: {text[:60]!r})")
        else:
            unanswered += 1
            problems.append(
                f"{where}: no answer (message still: {text[:40]!r}, callback answered={answer['answered']})"
            )

    taps_per_resident = Counter(t.resident for t in taps)
    lost = doubled = 0
    missing_qr, extra_qr = 0, 0
    for resident, expected in sorted(taps_per_resident.items()):
        got = len(codes[resident])
        if got < expected:
            lost += expected - got
            problems.append(f"resident {resident}: {got} redemptions in the database for {expected} taps (lost)")
        elif got > expected:
            doubled += got - expected
            problems.append(f"resident {resident}: {got} redemptions in the database for {expected} taps (doubled)")
        photos = Counter(
            m.group(1).replace("-", "")
            for v in Person(env.emulator, resident).bot_messages()
            if (m := QR_CODE.search(shown(v))) and v["message"].get("photo")
        )
        repeated = 0
        for code in codes[resident]:
            if photos[code] == 0:
                missing_qr += 1
                problems.append(f"resident {resident}: no QR photo for redemption {code}")
            repeated += max(0, photos[code] - 1)
        extra_qr += repeated
        # A crash between Telegram taking a message and the outbox marking it sent repeats it: at most one message
        # per chat being sent to at that moment (chats are sent to in parallel, each chat's rows in order).
        if repeated > len(env.kills):
            problems.append(f"resident {resident}: {repeated} repeated QR photos for {len(env.kills)} crashes")
    kills = len(env.kills)
    mismatches = await env.app.services.points.check()
    if mismatches:
        problems.append(f"points check: balances differ from their ledgers: {list(mismatches)}")
    summary = (
        f"{len(taps)} taps by {len(taps_per_resident)} residents, {kills} × {sig.name}: {unanswered} unanswered, "
        f"{refused} refused, {wrong_code} showing a wrong code, {lost} lost, {doubled} doubled, "
        f"{missing_qr} QR photos missing, {extra_qr} duplicated; {len(rows)} redemptions in the database"
    )
    assert not problems, env.explain(summary + "\n" + "\n".join(problems[:60]))


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_confirm_taps_survive_kill9_applied_once(
    tmp_path: Path, channel: str, seed: int, launcher: Launcher
) -> None:
    async with asyncio.timeout(BUDGET), crash_env(tmp_path, channel, seed=seed, launch=launcher) as env:
        taps = await run_rounds(env, signal.SIGKILL, ROUNDS)
        await check(env, taps, signal.SIGKILL)


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_confirm_taps_survive_sigterm_applied_once(
    tmp_path: Path, channel: str, seed: int, launcher: Launcher
) -> None:
    rounds = max(1, ROUNDS // 2)
    async with asyncio.timeout(BUDGET), crash_env(tmp_path, channel, seed=seed, launch=launcher) as env:
        taps = await run_rounds(env, signal.SIGTERM, rounds)
        await check(env, taps, signal.SIGTERM)
        forced = [str(k) for k in env.kills if k.forced]
        assert not forced, env.explain(f"the bot was still running {TERM_GRACE:.0f}s after SIGTERM: {forced}")
