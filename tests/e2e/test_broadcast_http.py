"""A campaign notice to 2,000 residents end to end over HTTP, with Telegram's flood limits on in the emulator.

The bot runs the pieces of ``bot.runner.run_bot`` — the real channel, the inbox, the outbox dispatcher, and the
ticker calling ``App.tick`` (which starts notices, edits the organiser's progress message and sends the report) —
against the sandbox emulator, which enforces Telegram's limits (30 messages/s per token, 1/s with a burst of 3 per
chat), injects 429s token-wide and per chat, and answers 403 "bot was blocked by the user" for 5% of the residents.

Time. Everything runs on *emulated* time, ``SPEED_UP`` times faster than real time: the emulator's ``time_scale``
divides its clock, and the bot's send gate, dispatcher (its bulk pace), ticker and services read the same emulated
clock. So the gate keeps Telegram's real limits (``GateLimits`` defaults), ``retry_after`` means what Telegram means
by it, and 2,000 messages at 29/s take about 70 emulated seconds — 7 s of real time if the machine keeps up (on two
vCPUs the bot and the emulator manage about 150 messages a real second, so the emulated broadcast stretches, which
changes nothing the test checks). The emulated wall clock stands at 10:00 in the community's time zone
(Asia/Shanghai) until the notice is sent, then runs: outside the default quiet hours (22:00–08:00), so only the
residents given quiet hours on purpose are held.

"No request inside a 429 window" is checked on the emulator's own request log (``flood_violations``), keeping the
requests that left the bot before the 429 that opened the window had come back to it: several sends are in flight at
once, and those already on the wire are refused too, which no client can avoid.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

import content
from bot.app import App, build_app, prepare_database
from bot.channels.gate import GateLimits, Kind, SendGate, Verdict
from bot.config import DatabaseSettings, FilesSettings, Settings
from bot.domain.campaigns import (
    Audience,
    AudienceKind,
    Campaign,
    CampaignStatus,
    Counts,
    Draft,
    Preferences,
    QuietHours,
)
from bot.domain.messaging import OutboxStatus
from bot.runner import TICK_SECONDS, Timing, serving
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.emulator import Emulator
from bot.sandbox.limits import Faults, FloodWait, RateLimits, is_metered
from bot.sandbox.models import CallRecord
from bot.sandbox.server import run_emulator
from bot.seed import import_communities
from storage.messaging_models import OutboxRow
from storage.uow import SqlUnitOfWork
from tests.support.campaigns import organiser, populate
from tests.support.outbox import settled

T = TypeVar("T")

SPEED_UP = 10  # emulated seconds per real second
RESIDENTS = 2000
FIRST = 3_000_001  # Telegram ids of the residents, clear of the demo personas
ZONE = ZoneInfo("Asia/Shanghai")
BODY = "<b>垃圾分类新规</b>：本周六起，厨余垃圾请在早 7 点至 9 点投放，其他时间请投放至小区集中投放点。"
SEEN = "厨余垃圾请在早 7 点至 9 点投放"  # how the body reads in the chat (HTML tags become formatting)
GARDEN = "园林城市创建：本周日上午 9 点，小区中心花园开展义务植树活动，欢迎报名。"
PLANTING = "开展义务植树活动"
QUIET_UNTIL = 10 * 60 + 1  # 10:01 local: the end of the quiet hours some residents have during the first notice


@dataclass
class EmulatedTime:
    """The emulator's clock divided by its time_scale, for the bot: monotonic seconds for the send gate, and a wall
    clock for the services, dispatcher, inbox and ticker that stands at ``start`` until :meth:`run`."""

    start: datetime
    scale: float = 1 / SPEED_UP  # the emulator's time_scale: real seconds per emulated second
    origin: float | None = None  # real monotonic time the wall clock started running

    def monotonic(self) -> float:
        return time.monotonic() / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)

    def run(self) -> None:
        self.origin = time.monotonic()

    def now(self) -> datetime:
        if self.origin is None:
            return self.start
        return self.start + timedelta(seconds=(time.monotonic() - self.origin) / self.scale)

    def real(self, moment: datetime) -> float:
        """The real monotonic time (as the emulator's request log keeps it) of an emulated moment."""
        assert self.origin is not None
        return self.origin + (moment - self.start).total_seconds() * self.scale


def ten_o_clock() -> datetime:
    today = datetime.now(ZONE).date()
    return datetime(today.year, today.month, today.day, 10, 0, tzinfo=ZONE).astimezone(UTC)


class ChatFloods:
    """Per-chat 429s: the first send to each chosen chat finds that chat over its limit (the emulator's own verdict,
    a window of ``seconds`` emulated seconds on that chat)."""

    def __init__(self, emulator: Emulator, chats: Iterable[int], seconds: int = 2) -> None:
        self.waiting = set(chats)
        limiter = emulator.limiter
        check = limiter.check

        def check_or_flood(bot_id: int, chat_id: int, *args: Any, **kwargs: Any) -> FloodWait | None:
            if chat_id in self.waiting:
                self.waiting.discard(chat_id)
                return limiter.pause(("chat", bot_id, chat_id), seconds)
            return check(bot_id, chat_id, *args, **kwargs)

        limiter.check = check_or_flood  # type: ignore[method-assign]


class WatchedGate(SendGate):
    """The send gate, noting when each request leaves and when each 429 comes back to it (real monotonic seconds,
    the emulator's clock), with the method and the chat."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.left: list[tuple[float, str, int | None]] = []
        self.told: list[tuple[float, str, int | None]] = []

    async def run(
        self,
        method: str,
        chat_id: int | None,
        call: Callable[[], Any],
        classify: Callable[[BaseException], Verdict],
        not_modified: T,
        *,
        paid: bool = False,
    ) -> T:
        async def watched() -> Any:
            self.left.append((time.monotonic(), method.lower(), chat_id))
            try:
                return await call()
            except Exception as error:
                if classify(error).kind is Kind.RETRY_AFTER:
                    self.told.append((time.monotonic(), method.lower(), chat_id))
                raise

        return await super().run(method, chat_id, watched, classify, not_modified, paid=paid)


def made_inside_windows(emulator: Emulator, gate: WatchedGate) -> tuple[list[CallRecord], int]:
    """Of the requests the emulator logged inside a 429 window (``flood_violations``): those the bot made after that
    429 had come back to it, and how many others there were — requests on the wire when the window opened, which no
    client can avoid (several sends are in flight at a time, and each of them is then refused too)."""

    def when(times: list[tuple[float, str, int | None]], r: CallRecord, first_after: bool) -> float:
        """When the request logged as ``r`` left the bot, or when its 429 came back."""
        matching = [t for t, method, chat in times if method == r.method.lower() and chat == r.chat_id]
        return min(t for t in matching if t >= r.t) if first_after else max(t for t in matching if t <= r.t)

    windows = [r for r in emulator.call_log if r.status == 429 and r.until is not None]
    violations = emulator.flood_violations()
    made = []
    for record in violations:
        left = when(gate.left, record, first_after=False)
        inside = [
            w
            for w in windows
            if w.seq < record.seq
            and (w.scope in ("bot", "fault") or w.chat_id == record.chat_id)
            and w.t <= record.t < (w.until or 0)
        ]
        if any(left >= when(gate.told, w, first_after=True) for w in inside):
            made.append(record)
    return made, len(violations) - len(made)


@dataclass
class Stack:
    app: App
    emulator: Emulator
    clock: EmulatedTime
    gate: WatchedGate
    channel: Any
    community: int


def make_channel(app: App, name: str, base_url: str, gate: SendGate) -> Any:
    """The real channel adapter, as ``bot.runner.make_channel`` builds it, with a gate on emulated time."""
    if name == "ptb":
        from bot.channels.ptb_channel import PtbChannel, make_application

        return PtbChannel(app.core, app.renderer, make_application(DEFAULT_TOKEN, base_url, gate))
    from bot.channels.aiogram_channel import AiogramChannel, make_bot

    return AiogramChannel(app.core, app.renderer, make_bot(DEFAULT_TOKEN, base_url, gate))


@contextlib.asynccontextmanager
async def stack(tmp_path: Path, channel_name: str, emulator: Emulator) -> AsyncIterator[Stack]:
    """App (SQLite, the demo community), emulator over HTTP and the channel; the bot is not running yet."""
    clock = EmulatedTime(ten_o_clock())
    url = f"sqlite+aiosqlite:///{tmp_path / 'broadcast.db'}"
    await prepare_database(url)
    settings = Settings(database=DatabaseSettings(url=url), files=FilesSettings(root=tmp_path / "media"))
    app = await build_app(settings, clock=clock.now)
    try:
        await import_communities(app.services, content.ROOT / "demo" / "community.yaml")
        community = await app.services.communities.by_code("demo")
        assert community is not None
        async with run_emulator(emulator=emulator) as (_, base_url):
            telegram = settings.telegram
            limits = GateLimits.from_rates(telegram.chat_per_second, telegram.group_per_minute)  # Telegram's
            gate = WatchedGate(limits, clock=clock.monotonic, sleep=clock.sleep)
            channel = make_channel(app, channel_name, base_url, gate)
            yield Stack(app, emulator, clock, gate, channel, community.id)
    finally:
        await app.aclose()


def timing(clock: EmulatedTime) -> Timing:
    """``run_bot``'s pieces on emulated time: the dispatcher (and its bulk pace), the inbox and the ticker."""
    return Timing(clock.now, clock.monotonic, clock.sleep, TICK_SECONDS * clock.scale, poll_seconds=1, drain_seconds=2)


async def meet(emulator: Emulator, user_ids: Iterable[int], blocked: Iterable[int]) -> None:
    """People who started the bot (so it may write to them), some of whom blocked it later; the bot, not running
    yet, never hears of it (their updates are dropped): it learns of a block from the 403."""
    for user_id in user_ids:
        emulator.create_user("居民", user_id=user_id)
        emulator.send_text(user_id, "/start")
    for user_id in blocked:
        emulator.block(user_id)
    await emulator.call_api(DEFAULT_TOKEN, "deleteWebhook", {"drop_pending_updates": True})


async def set_preferences(app: App, preferences: dict[int, Preferences], now: datetime) -> None:
    """Notice settings of many residents at once (one transaction), as /settings saves them."""
    async with app.transactions.scope() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        for telegram_id, chosen in preferences.items():
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            assert resident is not None
            await uow.campaigns.save_preferences(resident.id, chosen, now)
        await uow.commit()


def settings_of(
    residents: Iterable[int], quiet: Iterable[int], off: Iterable[int], garden: Iterable[int], until: int
) -> dict[int, Preferences]:
    """Quiet hours from 09:00 to ``until`` (local minutes), notices off, the garden track: whoever has any of them."""
    quiet, off, garden = set(quiet), set(off), set(garden)
    return {
        r: Preferences(
            r in off, QuietHours(9 * 60, until) if r in quiet else None, frozenset({"garden"} if r in garden else ())
        )
        for r in residents
        if r in quiet | off | garden
    }


async def until_done(app: App, campaign_id: int, author: int, within: float = 120.0) -> Counts:
    """Wait until the notice is done and the organiser's last progress edit and report went out; its counts."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        overview = await app.services.campaigns.overview(author, campaign_id)
        if overview.campaign.status is CampaignStatus.DONE:
            await settled(app, deadline - asyncio.get_running_loop().time())
            return overview.counts
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"notice {campaign_id} not done within {within} s: {overview.counts}")
        await asyncio.sleep(0.2)


async def rows(app: App, campaign: Campaign) -> dict[int, tuple[OutboxStatus, datetime | None]]:
    """Each recipient's outbox row of a campaign: status and not_before (UTC)."""
    async with app.uow() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        query = select(OutboxRow.chat_id, OutboxRow.status, OutboxRow.not_before).where(
            OutboxRow.campaign_id == campaign.id
        )
        found = (await uow.session.execute(query)).all()
    return {
        int(chat): (OutboxStatus(status), held.replace(tzinfo=UTC) if held and held.tzinfo is None else held)
        for chat, status, held in found
    }


def delivered(emulator: Emulator, chats: Iterable[int], text: str) -> Counter[int]:
    """How many bot messages containing ``text`` each chat shows."""
    return Counter(
        {
            chat: sum(1 for m in emulator.transcript(chat)["messages"] if m["from_bot"] and text in (m["text"] or ""))
            for chat in chats
        }
    )


def requests_to(calls: Sequence[CallRecord], chats: Iterable[int]) -> list[CallRecord]:
    wanted = set(chats)
    return [r for r in calls if r.chat_id in wanted and is_metered(r.method.lower())]


def last_bot_message(emulator: Emulator, chat: int, *texts: str) -> str:
    """The newest bot message in the chat that contains every one of ``texts``."""
    return next(
        m["text"]
        for m in reversed(emulator.transcript(chat)["messages"])
        if m["from_bot"] and all(text in (m["text"] or "") for text in texts)
    )


# The primary channel with the 2,000 residents of issue #10; python-telegram-bot with fewer, to keep CI fast.
@pytest.mark.parametrize(("channel", "count"), [("aiogram", RESIDENTS), ("ptb", 600)])
async def test_notice_with_429s_and_blocked_residents_reaches_each_reachable_resident_once(
    tmp_path: Path, channel: str, count: int
) -> None:
    faults = Faults(share_429=6 / count, seed=10, retry_after=1)  # about 6 token-wide 429s during the first notice
    emulator = Emulator(rate_limits=RateLimits(), faults=faults, time_scale=1 / SPEED_UP)
    residents = [FIRST + n for n in range(count)]
    blocked = residents[7::20]  # 5%
    quiet = residents[3::50]  # quiet hours until 10:01 during the first notice
    opted_out = residents[11::100]  # turned notices off
    gardeners = residents[::9]  # subscribed to the garden-city track (some of them blocked, quiet or opted out)
    flooded = residents[1 :: count // 5]  # each of these five gets a per-chat 429 first
    async with stack(tmp_path, channel, emulator) as box:
        app, clock = box.app, box.clock
        author = await organiser(app, clock.now())  # a resident of the community too: a recipient
        reachable = {author, *residents} - set(blocked) - set(opted_out)
        await populate(app, residents, clock.now())
        await meet(emulator, [author, *residents], blocked)
        await set_preferences(app, settings_of(residents, quiet, opted_out, gardeners, QUIET_UNTIL), clock.now())
        ChatFloods(emulator, flooded)

        async with serving(box.app, box.channel, timing(box.clock)):
            clock.run()  # 10:00:00 local
            first = await app.services.campaigns.create(author, Draft(box.community, BODY))
            held = await rows(app, first)
            release = clock.start + timedelta(minutes=1)
            assert {chat for chat, (_, until) in held.items() if until is not None} == set(quiet)
            assert {until for chat, (_, until) in held.items() if chat in quiet} == {release}
            assert set(held) == {author, *residents} - set(opted_out)  # opted out: not even a row
            counts = await until_done(app, first.id, author)

            # Every reachable resident has exactly one copy; a blocked one has none and is marked unreachable.
            assert delivered(emulator, [author, *residents], SEEN) == Counter(dict.fromkeys(reachable, 1))
            calls = list(emulator.call_log)
            ok = Counter(r.chat_id for r in calls if r.status == 200 and r.method == "sendMessage")
            assert {chat: ok[chat] for chat in residents if ok[chat]} == dict.fromkeys(reachable - {author}, 1)
            refused = Counter(r.chat_id for r in calls if r.status == 403)
            assert refused == Counter(dict.fromkeys(blocked, 1))
            async with app.uow() as uow:
                assert all([await uow.outbox.unreachable(chat) for chat in blocked])
                assert not any([await uow.outbox.unreachable(chat) for chat in list(reachable)[:50]])
            # Quiet hours: nothing reached them before 10:01 (nor was tried).
            for record in requests_to(calls, quiet):
                assert record.t >= clock.real(release), (record, clock.real(release))
            assert counts == Counts(sent=len(reachable), skipped=len(blocked))

            # The 429s happened, and no request was made inside a window the bot had been told of.
            scopes = Counter(r.scope for r in calls if r.status == 429)
            assert scopes["fault"] >= 2, scopes
            assert {r.chat_id for r in calls if r.scope == "chat"} >= set(flooded)
            made, in_flight = made_inside_windows(emulator, box.gate)
            assert made == [], f"{len(made)} requests inside a known 429 window ({in_flight} were in flight)"

            # The organiser's progress message was edited while it went and ends with the final counts.
            edits = [r for r in calls if r.chat_id == author and r.method == "editMessageText" and r.status == 200]
            assert len(edits) >= 3
            progress = last_bot_message(emulator, author, f"通知 #{first.id} ", "已送达：")
            assert f"通知 #{first.id} 已发送完毕" in progress
            assert f"已送达：{len(reachable)}\n" in progress and f"已跳过：{len(blocked)}（" in progress
            assert "失败：0\n" in progress and "剩余：0" in progress
            report = last_bot_message(emulator, author, "发送报告")
            assert f"✅ 送达 {len(reachable)} · ⏭ 跳过 {len(blocked)} · ❌ 失败 0" in report

            # Second notice, urgent, to the garden track only, during the quiet hours of some subscribers: only
            # subscribers get it, the quiet ones at once, and the blocked ones are skipped without a request.
            await set_preferences(app, settings_of(residents, quiet, opted_out, gardeners, 12 * 60), clock.now())
            mark = emulator.call_log[-1].seq
            audience = Audience(AudienceKind.TRACK, track="garden")
            second = await app.services.campaigns.create(author, Draft(box.community, GARDEN, audience, urgent=True))
            assert all(until is None for _, until in (await rows(app, second)).values())
            counts = await until_done(app, second.id, author)
            later = [r for r in emulator.call_log if r.seq > mark]
            subscribed = set(gardeners) - set(opted_out)
            assert set(quiet) & subscribed - set(blocked)  # some get it in their quiet hours
            assert {r.chat_id for r in requests_to(later, residents)} == subscribed - set(blocked)
            assert delivered(emulator, residents, PLANTING) == Counter(dict.fromkeys(subscribed - set(blocked), 1))
            assert counts == Counts(sent=len(subscribed - set(blocked)), skipped=len(subscribed & set(blocked)))
            progress = last_bot_message(emulator, author, f"通知 #{second.id} ", "已送达：")
            assert f"已跳过：{len(subscribed & set(blocked))}（" in progress and "剩余：0" in progress
            assert made_inside_windows(emulator, box.gate)[0] == []
