"""随手拍 photos sent while the bot is killed: after the restart every photo is in the report, once, and no file is left
over in the media folder.

Each round, six residents open /report → 乱扔垃圾/垃圾满溢 (photos required) with the bot running; then each sends
five photos at random moments over 1.5 s while the bot gets SIGKILL — in odd rounds at a random moment in the first
2 s, in even rounds the moment it asks for the k-th photo of the round (getFile, k random), that is in the middle of
taking a photo in. Photos sent after the kill wait in Telegram's queue. The bot is restarted and left to go quiet,
and each resident finishes the
report (照片发完了 → a typed address → a description → 显示我的称呼 → 确认提交).

Every photo has its own width, kept through the bot's re-encoding, so a stored file tells which photo it is: each
report must hold exactly the five photos its reporter sent, each acknowledged (已收到第 n 张照片), and the media folder
must hold exactly the files the reports name.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.crash import (
    BUDGET,
    PHOTO_RECEIVED,
    ROUNDS,
    SUBMITTED,
    BotProcess,
    CrashEnv,
    Kill,
    Launcher,
    Person,
    crash_env,
    describe,
    photo,
    photo_number,
    photos_done,
    shown,
    start_report,
)

pytestmark = pytest.mark.crash

PEOPLE = 6
PHOTOS = 5  # the most a report takes
SEND_WINDOW = 1.5  # the photos of a round go out over this many seconds
KILL_WINDOW = 2.0


@dataclass
class Draft:
    resident: int
    round: int
    photos: list[int] = field(default_factory=list)  # photo numbers sent
    since: int = 0  # event versions of the round: before the first photo ...
    until: int = 0  # ... and once the report is submitted
    ticket: str | None = None
    problem: str | None = None


async def send_photos(env: CrashEnv, person: Person, draft: Draft, first: int) -> None:
    moments = sorted(env.rng.uniform(0.0, SEND_WINDOW) for _ in range(PHOTOS))
    start = asyncio.get_running_loop().time()
    for index, moment in enumerate(moments):
        await asyncio.sleep(max(0.0, start + moment - asyncio.get_running_loop().time()))
        number = first + index
        person.send_photo(photo(number))
        draft.photos.append(number)


async def finish(person: Person, draft: Draft) -> None:
    """照片发完了 → address → description → named → 确认提交; a step the bot does not answer is the problem noted."""
    try:
        await photos_done(person)
        confirm = await describe(person, "3号楼东侧垃圾站", f"垃圾桶满了，垃圾散落一地（第 {draft.round} 轮）")
        answer = await person.tap_and_wait(confirm, "确认提交", "已提交，编号")
    except AssertionError as error:
        draft.problem = f"could not finish the report: {error}"
        draft.until = person.emulator.events.version
        return
    found = SUBMITTED.search(shown(answer))
    assert found is not None
    draft.ticket = found.group(1)
    draft.until = person.emulator.events.version


def kill(env: CrashEnv, bot: BotProcess, number: int) -> Awaitable[Kill]:
    """Odd rounds: at a random moment; even rounds: the moment the bot asks for the k-th photo (getFile), k random."""
    if number % 2:
        return bot.kill_later(env.rng.uniform(0.0, KILL_WINDOW))
    mark, nth = len(env.emulator.requests), env.rng.randint(1, PEOPLE * PHOTOS)
    return bot.kill_when(lambda: env.emulator.count("getFile", since=mark) >= nth, SEND_WINDOW + KILL_WINDOW)


async def run_rounds(env: CrashEnv, rounds: int) -> list[Draft]:
    people = [Person(env.emulator, r) for r in env.residents[:PEOPLE]]
    bot = env.bot()
    await bot.restart()
    drafts: list[Draft] = []
    for number in range(1, rounds + 1):
        if not bot.alive:
            await bot.restart()
        await asyncio.gather(*(start_report(p, "乱扔垃圾/垃圾满溢") for p in people))
        batch = [Draft(p.user_id, number, since=env.emulator.events.version) for p in people]
        base = len(drafts) * PHOTOS
        sending = [
            send_photos(env, p, d, base + i * PHOTOS) for i, (p, d) in enumerate(zip(people, batch, strict=True))
        ]
        await asyncio.gather(kill(env, bot, number), *sending)
        await bot.restart()
        await bot.settle()
        env.mark(f"round {number}: photos sent, {bot.kills[-1]}, restarted and quiet")
        await asyncio.gather(*(finish(p, d) for p, d in zip(people, batch, strict=True)))
        env.mark(f"round {number}: reports submitted")
        drafts += batch
    await bot.settle()
    await bot.stop()
    return drafts


async def check(env: CrashEnv, drafts: list[Draft]) -> None:
    rows = await env.sql("SELECT ticket, photos FROM report")
    stored = {ticket: json.loads(keys) if isinstance(keys, str) else list(keys) for ticket, keys in rows}
    problems: list[str] = []
    lost = doubled = unacknowledged = 0
    for draft in drafts:
        where = f"resident {draft.resident} round {draft.round}"
        person = Person(env.emulator, draft.resident)
        round_ = [v for v in person.messages(draft.since) if v["version"] <= draft.until and v["from_bot"]]
        acks = Counter(int(m.group(1)) for v in round_ if (m := PHOTO_RECEIVED.search(shown(v))))
        missing_acks = [n for n in range(1, PHOTOS + 1) if acks[n] == 0]
        if missing_acks:
            unacknowledged += len(missing_acks)
            problems.append(f"{where}: no 已收到第 n 张照片 for n in {missing_acks}")
        if draft.problem or draft.ticket is None:
            lost += PHOTOS
            problems.append(f"{where}: {draft.problem or 'no ticket'}")
            continue
        files: list[int | str] = []
        for key in stored.get(draft.ticket, []):
            path = env.media / key
            files.append(photo_number(path.read_bytes()) if path.is_file() else f"missing file {key}")
        got = Counter(files)
        sent: Counter[int | str] = Counter(draft.photos)
        if got != sent:
            lost += sum((sent - got).values())
            doubled += sum((got - sent).values())
            problems.append(f"{where} {draft.ticket}: photos sent {sorted(draft.photos)}, in the report {files}")

    referenced = {key for keys in stored.values() for key in keys}
    on_disk = {str(p.relative_to(env.media)) for p in env.media.rglob("*") if p.is_file()}
    orphans = sorted(on_disk - referenced)
    leftovers = [o for o in orphans if Path(o).name.startswith(".") and o.endswith(".tmp")]
    if leftovers:
        problems.append(f"{len(leftovers)} temporary files left by interrupted writes: {leftovers[:10]}")
    if len(orphans) > len(leftovers):
        stray = [o for o in orphans if o not in leftovers]
        problems.append(f"{len(stray)} stored photos in the media folder that no report names: {stray[:10]}")
    kills = len(env.kills)
    summary = (
        f"{len(drafts)} drafts × {PHOTOS} photos, {kills} × SIGKILL: {lost} photos lost, {doubled} doubled, "
        f"{unacknowledged} not acknowledged, {len(orphans)} orphan files; {len(rows)} reports"
    )
    assert not problems, env.explain(summary + "\n" + "\n".join(problems[:60]))


@pytest.mark.parametrize("channel", ["aiogram", "ptb"])
async def test_report_photos_survive_kill(tmp_path: Path, channel: str, seed: int, launcher: Launcher) -> None:
    rounds = max(1, ROUNDS // 2)
    async with (
        asyncio.timeout(BUDGET),
        crash_env(tmp_path, channel, seed=seed, launch=launcher, residents=PEOPLE) as env,
    ):
        drafts = await run_rounds(env, rounds)
        await check(env, drafts)
