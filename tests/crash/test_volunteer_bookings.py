"""Twenty volunteers tap 报名 on the same shift at once while the bot is killed; each tap counts once, the shift never
takes more than its places, and everyone is told whether they got one.

Before the rounds (in the test process, on the bot's database) every resident becomes a volunteer and the organiser
creates one activity (track 综合) with one shift per round: five places, cut-off 0, a few days ahead, two hours
apart so no two overlap. With the bot running undisturbed, every resident opens each shift's card through the real
menu (/volunteer → 📅 近期班次 → 综合 → the shift's button), so each round's taps land on cards of their own. In each
round the bot is started, all twenty tap ✅ 报名这个班次 on that round's card, and at a random moment in the next
two seconds the bot gets SIGKILL (or SIGTERM); after the last round it is started once more and left to go quiet.

Then, per shift: exactly five places held (never more: overbooked; never fewer: a place lost or a tap told "full"
while places were free), no waiting or other rows (nobody asked for the waitlist), nobody with two rows. Per tap:
the callback was answered, the card shows either 报名成功 or 满员 — and it agrees with the database (报名成功 only
with a place, 满员 only without one) —, and the bot stored one answer for it: a tap handled twice would be refused
the second time as "already booked" and Telegram would drop that answer, so only the outbox can tell.

The list shows at most 20 shifts with a button of their own, so at most 20 rounds run (``SICHENG_CRASH_ROUNDS``
above that is capped).
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, text

from bot.app import App
from bot.domain.volunteers import ProfileStatus, ShiftDraft
from bot.sandbox.demo import COMMUNITY, ORGANISER_ID
from handlers.volunteers import LIST_BUTTONS
from tests.support.crash import (
    BUDGET,
    ROUNDS,
    TERM_GRACE,
    CrashEnv,
    Launcher,
    Person,
    crash_env,
    kill_delays,
    labels,
    shown,
    tap_rounds,
)

pytestmark = pytest.mark.crash

KILL_WINDOW = 2.0  # seconds after the taps
CAPACITY = 5  # places per shift, for twenty residents
TITLE = "压力测试·报名"
BOOK = "报名这个班次"  # the card's button
BOOKED = "报名成功"  # the card after a place was taken
FULL = "这个班次已经满员了"  # the answer when it was not
WEEKDAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")


@dataclass
class Plan:
    """The shifts the test created, one per round, in round order."""

    rounds: int
    shifts: list[int] = field(default_factory=list)
    starts: list[datetime] = field(default_factory=list)  # local times

    async def prepare(self, app: App, people: list[int]) -> None:
        """Everyone a volunteer; one activity with a shift per round (a few days ahead, two hours apart)."""
        for telegram_id in people:
            profile = await app.services.volunteers.register(telegram_id, "", "")
            assert profile.status is ProfileStatus.APPROVED, f"resident {telegram_id} is {profile.status}"
        community = await app.services.communities.by_code(COMMUNITY)
        assert community is not None
        zone = app.services.volunteers.zone(community)
        today = app.services.volunteers.now().astimezone(zone).date()
        first = datetime.combine(today + timedelta(days=3), time(7, 0), zone)
        desk = app.services.volunteer_desk
        activity = await desk.create_activity(
            ORGANISER_ID, title=TITLE, description="", place="社区服务中心", contact="刘主任 021-5555 0101",
            track=None,  # 综合, as the organisers' dialog stores it
        )  # fmt: skip
        for number in range(self.rounds):
            start = first + timedelta(hours=2 * number)
            draft = ShiftDraft(start, start + timedelta(hours=1), CAPACITY, 2, "", cutoff_hours=0)
            (shift,) = await desk.add_shifts(ORGANISER_ID, activity.id, draft)
            self.shifts.append(shift.id)
            self.starts.append(start)


def button_label(start: datetime) -> str:
    """The start of the shift's button in the list (``volunteers.btn.shift_item``)."""
    return f"{start.month}/{start.day} {start.strftime('%H:%M')} {TITLE}"


def card_time(start: datetime) -> str:
    """How the card names the start (``m.when``)."""
    return f"{start.month}月{start.day}日 {WEEKDAYS[start.weekday()]} {start.strftime('%H:%M')}"


@dataclass
class Tap:
    resident: int
    round: int
    shift_id: int
    message_id: int
    query_id: str = ""


async def open_cards(person: Person, plan: Plan) -> list[int]:
    """One shift card per round, each its own message, opened from the list of 综合 shifts."""
    version = person.send("/volunteer")
    home = await person.wait_text("感谢您成为志愿者", after=version)
    await person.tap_and_wait(home["message_id"], "近期班次", "近期志愿服务班次")
    listed = await person.tap_and_wait(home["message_id"], "综合", "📌 综合")
    cards = []
    for start in plan.starts:
        version = person.emulator.events.version
        person.press(listed["message_id"], button_label(start))
        when = card_time(start)
        card = await person.wait(
            lambda m, when=when: when in shown(m) and any(BOOK in label for label in labels(m)),
            after=version,
            what=f"the card of the shift at {when}",
        )
        assert card["message_id"] != listed["message_id"], "the card replaced the list instead of coming below it"
        cards.append(int(card["message_id"]))
    return cards


async def run_rounds(env: CrashEnv, plan: Plan, sig: signal.Signals) -> list[Tap]:
    people = [Person(env.emulator, r) for r in env.residents]
    bot = env.bot()
    await bot.restart()
    env.mark("bot polling")
    cards = await asyncio.gather(*(open_cards(p, plan) for p in people))
    env.mark(f"{len(people)} × {plan.rounds} shift cards open")
    await bot.settle()
    delays = kill_delays(env.rng, plan.rounds, KILL_WINDOW)
    return await tap_rounds(
        env, bot, people, cards, BOOK, delays, sig,
        lambda person, number, message: Tap(person.user_id, number + 1, plan.shifts[number], message),
    )  # fmt: skip


async def check(env: CrashEnv, plan: Plan, taps: list[Tap], sig: signal.Signals) -> None:
    query = text(
        "SELECT b.shift_id, r.telegram_id, b.status FROM volunteer_booking b JOIN resident r ON r.id = b.resident_id "
        "WHERE b.shift_id IN :shifts"
    ).bindparams(bindparam("shifts", expanding=True))
    async with env.app.engine.connect() as connection:
        rows = list((await connection.execute(query, {"shifts": plan.shifts})).fetchall())
    statuses: dict[tuple[int, int], list[str]] = defaultdict(list)  # (shift, resident) → statuses of their rows
    per_shift: dict[int, Counter[str]] = defaultdict(Counter)
    for shift_id, telegram_id, status in rows:
        statuses[(shift_id, telegram_id)].append(status)
        per_shift[shift_id][status] += 1
    problems: list[str] = []
    overbooked = underbooked = doubled = 0
    for number, shift_id in enumerate(plan.shifts, 1):
        counts = per_shift[shift_id]
        held = counts["booked"] + counts["offered"]
        where = f"round {number} (shift {shift_id})"
        if held > CAPACITY:
            overbooked += 1
            problems.append(f"{where}: {held} places held for {CAPACITY} (overbooked): {dict(counts)}")
        elif held < CAPACITY:
            underbooked += 1
            problems.append(f"{where}: {held} places held for {CAPACITY} and {len(env.residents)} taps: {dict(counts)}")
        others = {s: c for s, c in counts.items() if s not in ("booked", "offered")}
        if others:
            problems.append(f"{where}: rows nobody asked for: {others}")
    for (shift_id, telegram_id), held in sorted(statuses.items()):
        if len(held) > 1:
            doubled += 1
            problems.append(f"resident {telegram_id}: {len(held)} rows on shift {shift_id}: {held}")

    # Handled once: one stored answer per tap. A crash may resend that row (the same row), but a tap handled a
    # second time would store a second one (and refuse it as "already booked", invisibly: Telegram takes only the
    # first answer to a button press).
    answers: Counter[str] = Counter()
    for (payload,) in await env.sql("SELECT payload FROM outbox_message WHERE kind = 'out.answer'"):
        answers[str((json.loads(payload) if isinstance(payload, str) else payload).get("callback_id"))] += 1
    handled_twice = 0
    unanswered = neither = confused = told_booked = told_full = 0
    for tap in taps:
        view = Person(env.emulator, tap.resident).message(tap.message_id)
        shows = shown(view) if view else "(message gone)"
        answer = env.emulator.callback_answer(tap.query_id)
        where = f"resident {tap.resident} round {tap.round}"
        has_place = "booked" in statuses.get((tap.shift_id, tap.resident), [])
        if answers[tap.query_id] > 1:
            handled_twice += 1
            problems.append(f"{where}: the tap was handled {answers[tap.query_id]} times (answers stored)")
        if not answer["answered"]:
            unanswered += 1
            problems.append(f"{where}: the tap was never answered (card: {shows[:50]!r})")
        if BOOKED in shows:
            told_booked += 1
            if not has_place:
                confused += 1
                problems.append(f"{where}: told {BOOKED} but holds no place on shift {tap.shift_id}")
        elif FULL in shows:
            told_full += 1
            if has_place:
                confused += 1
                problems.append(f"{where}: told the shift is full but holds a place on shift {tap.shift_id}")
        else:
            neither += 1
            alert = answer.get("text")
            problems.append(f"{where}: card shows neither answer: {shows[:80]!r}, alert {alert!r}")
    summary = (
        f"{len(taps)} taps on {len(plan.shifts)} shifts of {CAPACITY} places, {len(env.kills)} × {sig.name}: "
        f"{told_booked} told booked, {told_full} told full, {neither} told neither, {unanswered} never answered, "
        f"{confused} answers contradicting the database, {handled_twice} handled twice; {overbooked} shifts "
        f"overbooked, {underbooked} with places left, {doubled} people with two rows on a shift; {len(rows)} rows"
    )
    assert not problems, env.explain(summary + "\n" + "\n".join(problems[:60]))


def plan_for(rounds: int) -> Plan:
    return Plan(min(rounds, LIST_BUTTONS))


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_book_taps_survive_kill9_one_place_each_never_overbooked(
    tmp_path: Path, channel: str, seed: int, launcher: Launcher
) -> None:
    plan = plan_for(ROUNDS)
    async with (
        asyncio.timeout(BUDGET),
        crash_env(tmp_path, channel, seed=seed, launch=launcher, points=0, prepare=plan.prepare) as env,
    ):
        taps = await run_rounds(env, plan, signal.SIGKILL)
        await check(env, plan, taps, signal.SIGKILL)


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_book_taps_survive_sigterm_one_place_each_never_overbooked(
    tmp_path: Path, channel: str, seed: int, launcher: Launcher
) -> None:
    plan = plan_for(max(1, ROUNDS // 2))
    async with (
        asyncio.timeout(BUDGET),
        crash_env(tmp_path, channel, seed=seed, launch=launcher, points=0, prepare=plan.prepare) as env,
    ):
        taps = await run_rounds(env, plan, signal.SIGTERM)
        await check(env, plan, taps, signal.SIGTERM)
        forced = [str(k) for k in env.kills if k.forced]
        assert not forced, env.explain(f"the bot was still running {TERM_GRACE:.0f}s after SIGTERM: {forced}")
