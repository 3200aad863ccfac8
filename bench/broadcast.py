"""Broadcast delivery over HTTP: a campaign notice to 5,000 residents through the sandbox emulator with Telegram's
flood limits on, while a few residents tap the main menu.

    python -m bench.broadcast [--recipients 5000] [--time-scale 1] [--channel aiogram|ptb] [--tappers 5]
                              [--tap-every 2] [--blocked 0.0] [--share-429 0.0] [--share-5xx 0.0]

Method. The emulator (``bot.sandbox``) runs in a child process with its own event loop and enforces Telegram's
limits (``RateLimits()``: 30 messages/s per token with a burst of 30, 1/s per chat with a burst of 3). ``--recipients``
registered residents of the demo community have started the bot; ``--blocked`` of them (a share) blocked it
afterwards. The bot runs the pieces of ``bot.runner.run_bot`` — the real channel (``--channel``), the inbox, the
outbox dispatcher and the ticker calling ``App.tick`` — with Telegram's limits in its send gate (``GateLimits()``).
An organiser sends a notice to everyone (``CampaignService.create``); the dispatcher delivers it. ``--share-429`` and
``--share-5xx`` make the emulator refuse that share of sends (a 429 pauses the whole token for 1 s).

Time (``--time-scale``). 1 (the default) is real time: 5,000 messages take about 170 s. Below 1 the emulator
runs its clock faster (``Emulator(time_scale=...)``: 0.25 means one emulated second lasts 250 ms) and the bot reads
the same emulated clock (send gate, dispatcher, ticker, services), so limits, ``retry_after`` and quiet hours keep
their meaning; only the CPU gets less time per message. Every figure below is in emulated seconds (so below 1 the
bot's own CPU time counts 1/scale times in the tap latency). The emulated wall clock starts at 10:00 in the
community's time zone, outside the default quiet hours (22:00–08:00).

Figures, from the emulator's request log:

* ``utilisation``: the token's accepted sends (every metered request that was not refused with 429: notices, the
  taps' answers, progress edits, 403s) from the first notice delivered to the last, per emulated second, over the
  configured per-token limit (``RateLimits().per_bot_per_second``, the same 30/s the gate is given);
* ``lost``: reachable recipients with no copy; ``duplicates``: recipients with more than one;
* ``tap p50/p95``: ``--tappers`` residents (notices turned off, so they are not recipients) hold the bot's real main
  menu; while the notice goes out one of them taps its 设置 button, on average every ``--tap-every`` emulated seconds
  (at random phases of the token's one-second window), and the
  time runs from the tap (the emulator queues the ``callback_query``) to the bot's answer message (the emulator logs
  the successful ``sendMessage`` of the settings page to that chat).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import content
from bench.remote import emulator_process
from bot.app import App, build_app, prepare_database
from bot.channels.gate import GateLimits, SendGate
from bot.config import DatabaseSettings, Settings
from bot.domain.campaigns import Audience, CampaignStatus, Counts, Draft
from bot.domain.roles import Role
from bot.runner import TICK_SECONDS, Timing, serving
from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.emulator import Emulator
from bot.sandbox.limits import Faults, RateLimits, is_metered
from bot.seed import import_communities
from storage.uow import SqlUnitOfWork

FIRST_USER = 3_000_001  # clear of the demo personas (1000001...)
ORGANISER = 2_999_999
ZONE = ZoneInfo("Asia/Shanghai")
BODY = "<b>垃圾分类新规</b>：本周六起，厨余垃圾请在早 7 点至 9 点投放，其他时间请投放至小区集中投放点。"
SETTINGS_LABEL = "设置"  # the main menu's ⚙️ 设置 button
TIMEOUT = 900.0  # real seconds


@dataclass
class EmulatedTime:
    """The emulator's clock divided by its time_scale, for the bot: monotonic seconds for the send gate and a wall
    clock (from ``start``) for the services, the dispatcher and the ticker."""

    start: datetime
    scale: float
    origin: float = field(default_factory=time.monotonic)

    def monotonic(self) -> float:
        return time.monotonic() / self.scale

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds * self.scale)

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.origin) / self.scale)


def ten_o_clock() -> datetime:
    today = datetime.now(ZONE).date()
    return datetime(today.year, today.month, today.day, 10, 0, tzinfo=ZONE)


# --- Telegram's side, in the child process --------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """What the emulator's request log says about the broadcast."""

    first: float  # real monotonic time of the first and the last notice accepted
    last: float
    accepted: int  # metered requests of the token not refused with 429, between first and last
    copies: dict[int, int]  # recipient → notices accepted
    refused: dict[str, int]  # 429s by scope
    violations: int  # requests inside a 429 window (flood_violations)


class Driver:
    """Works the emulator from its own event loop: residents, their menus, taps and the request log."""

    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        self.menus: dict[int, tuple[int, str]] = {}  # tapper → (message id, callback data of 设置)
        self.latencies: list[float] = []
        self._tapping: asyncio.Task[None] | None = None
        self._taps: set[asyncio.Task[None]] = set()

    def meet(self, user_ids: Sequence[int], blocked: Sequence[int]) -> None:
        """Residents who started the bot; some of them blocked it since. Run before the bot polls."""
        for user_id in user_ids:
            self.emu.create_user("居民", user_id=user_id)
            self.emu.send_text(user_id, "/start")
        for user_id in blocked:
            self.emu.block(user_id)

    async def reset(self) -> None:
        """Drop the updates the bot is not to see (the /start messages and blocks above)."""
        await self.emu.call_api(DEFAULT_TOKEN, "deleteWebhook", {"drop_pending_updates": True})

    async def open_menus(self, tappers: Sequence[int]) -> None:
        """Each tapper asks the bot for its main menu (/menu) and keeps the message."""
        for user_id in tappers:
            version = self.emu.events.version
            self.emu.send_text(user_id, "/menu")
            (menu,) = await self.emu.wait_bot_messages(user_id, 1, after=version, within=30)
            button = next(b for row in menu["inline_keyboard"] for b in row if SETTINGS_LABEL in b["text"])
            self.menus[user_id] = (menu["message_id"], button["callback_data"])

    def mark(self) -> int:
        return self.emu.call_log[-1].seq if self.emu.call_log else 0

    async def start_taps(self, every: float) -> None:
        """From now on, one tapper after the other taps 设置, on average every ``every`` real seconds."""

        async def tapping() -> None:
            tappers = list(self.menus)
            spread = random.Random(7)  # taps land at every phase of the token's one-second window
            n = 0
            while True:
                task = asyncio.create_task(self._tap(tappers[n % len(tappers)]))
                self._taps.add(task)
                task.add_done_callback(self._taps.discard)
                n += 1
                await asyncio.sleep(every * spread.uniform(0.5, 1.5))

        self._tapping = asyncio.create_task(tapping())

    async def stop_taps(self) -> list[float]:
        if self._tapping is not None:
            self._tapping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tapping
        if self._taps:
            await asyncio.wait(self._taps, timeout=60)
        return self.latencies

    async def _tap(self, user_id: int) -> None:
        message_id, data = self.menus[user_id]
        seen = self.mark()
        start = time.monotonic()
        self.emu.press_button(user_id, user_id, message_id, data=data)
        deadline = start + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.002)
            for record in reversed(self.emu.call_log):
                if record.seq <= seen:
                    break
                if record.chat_id == user_id and record.status == 200 and record.method == "sendMessage":
                    self.latencies.append(record.t - start)
                    return
        raise TimeoutError(f"tap of {user_id} not answered within 60 s")

    def delivery(self, after: int, recipients: Sequence[int]) -> Delivery:
        wanted = set(recipients)
        log = [r for r in self.emu.call_log if r.seq > after]
        notices = [r for r in log if r.status == 200 and r.method == "sendMessage" and r.chat_id in wanted]
        first, last = notices[0].t, notices[-1].t
        accepted = [
            r for r in log if is_metered(r.method.lower()) and r.status not in (0, 429) and first <= r.t <= last
        ]
        return Delivery(
            first=first,
            last=last,
            accepted=len(accepted),
            copies=dict(Counter(int(r.chat_id) for r in notices if isinstance(r.chat_id, int))),
            refused=dict(Counter(str(r.scope) for r in log if r.status == 429)),
            violations=len([r for r in self.emu.flood_violations() if r.seq > after]),
        )


def _driver(time_scale: float, faults: Faults) -> tuple[Emulator, Driver]:
    """The emulator and its driver, built in the emulator's child process."""
    emulator = Emulator(rate_limits=RateLimits(), faults=faults, time_scale=time_scale)
    return emulator, Driver(emulator)


# --- the bot ------------------------------------------------------------------------------------------------------


def make_channel(app: App, name: str, base_url: str, gate: SendGate) -> Any:
    """The real channel adapter, as ``bot.runner.make_channel`` builds it, with a gate on emulated time."""
    if name == "ptb":
        from bot.channels.ptb_channel import PtbChannel, make_application

        return PtbChannel(app.core, app.renderer, make_application(DEFAULT_TOKEN, base_url, gate))
    from bot.channels.aiogram_channel import AiogramChannel, make_bot

    return AiogramChannel(app.core, app.renderer, make_bot(DEFAULT_TOKEN, base_url, gate))


def timing(clock: EmulatedTime) -> Timing:
    """``run_bot``'s pieces on emulated time: the dispatcher (and its bulk pace), the inbox and the ticker."""
    return Timing(clock.now, clock.monotonic, clock.sleep, TICK_SECONDS * clock.scale, poll_seconds=5)


async def residents(app: App, telegram_ids: Sequence[int], now: datetime) -> int:
    """Registered residents of the demo community (one transaction); returns the community id."""
    community = await app.services.communities.by_code("demo")
    assert community is not None
    async with app.transactions.scope() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        for n, telegram_id in enumerate(telegram_ids):
            resident = await uow.residents.add(telegram_id, "zh_Hans", now)
            building = community.buildings[n % len(community.buildings)]
            await uow.residents.update(
                resident.id, consent_at=now, consent_version="bench", community_id=community.id, building_id=building.id
            )
        await uow.commit()
    return community.id


async def until_done(app: App, campaign_id: int) -> Counts:
    """Wait until the ticker has found nothing left to send and closed the campaign; its final counts."""
    deadline = time.monotonic() + TIMEOUT
    while (overview := await app.services.campaigns.overview(ORGANISER, campaign_id)).campaign.status is not (
        CampaignStatus.DONE
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broadcast did not finish: {overview.counts}")
        await asyncio.sleep(0.2)
    return overview.counts


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def main(args: argparse.Namespace) -> None:
    scale = args.time_scale
    recipients = [FIRST_USER + n for n in range(args.recipients)]
    tappers = [FIRST_USER + args.recipients + n for n in range(args.tappers)]
    step = round(1 / args.blocked) if args.blocked > 0 else 0
    blocked = recipients[::step] if step else []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await prepare_database(url)
        clock = EmulatedTime(ten_o_clock(), scale)
        settings = Settings(database=DatabaseSettings(url=url))
        app = await build_app(settings, clock=clock.now)
        try:
            await import_communities(app.services, content.ROOT / "demo" / "community.yaml")
            community = await residents(app, [ORGANISER, *recipients, *tappers], clock.now())
            await app.services.access.grant(ORGANISER, Role.ORGANISER, "demo", None)
            for user_id in tappers:  # not recipients: their only messages are the answers to their taps
                await app.services.campaigns.set_notices(user_id, False)
            faults = Faults(share_429=args.share_429, share_5xx=args.share_5xx, seed=1)
            async with emulator_process(functools.partial(_driver, scale, faults)) as driver:
                await driver.call("meet", [ORGANISER, *recipients, *tappers], blocked)
                await driver.call("reset")
                limits = GateLimits.from_rates(settings.telegram.chat_per_second, settings.telegram.group_per_minute)
                gate = SendGate(limits, clock=clock.monotonic, sleep=clock.sleep)
                channel = make_channel(app, args.channel, driver.base_url, gate)
                async with serving(app, channel, timing(clock)):
                    await driver.call("open_menus", tappers)
                    mark = await driver.call("mark")
                    campaign = await app.services.campaigns.create(ORGANISER, Draft(community, BODY, Audience()))
                    await driver.call("start_taps", args.tap_every * scale)
                    counts = await until_done(app, campaign.id)
                    taps: list[float] = await driver.call("stop_taps")
                    done: Delivery = await driver.call("delivery", mark, recipients)
        finally:
            await app.aclose()
    report(args, done, counts, taps, blocked, recipients, scale)


def report(
    args: argparse.Namespace,
    done: Delivery,
    counts: Counts,
    taps: list[float],
    blocked: Sequence[int],
    recipients: Sequence[int],
    scale: float,
) -> None:
    limit = RateLimits().per_bot_per_second
    seconds = (done.last - done.first) / scale
    rate = (done.accepted - 1) / seconds
    reachable = set(recipients) - set(blocked)
    lost = sum(1 for r in reachable if done.copies.get(r, 0) == 0)
    duplicates = sum(1 for n in done.copies.values() if n > 1)
    taps_emulated = [t / scale for t in taps]
    print(
        f"{args.recipients} recipients ({len(blocked)} blocked), channel {args.channel}, time scale {scale:g}, "
        f"limit {limit:g}/s per token; {len(taps)} taps by {args.tappers} residents"
    )
    print(
        f"notices {sum(done.copies.values())} in {seconds:.1f} s; token sends accepted {done.accepted} "
        f"({rate:.2f}/s); campaign counts {counts.to_json()}; 429s {done.refused or 0}; "
        f"logged inside a 429 window {done.violations}"
    )
    print(
        f"utilisation={rate / limit:.2f} lost={lost} duplicates={duplicates} "
        f"tap_p50={statistics.median(taps_emulated):.2f}s tap_p95={percentile(taps_emulated, 0.95):.2f}s "
        f"tap_max={max(taps_emulated):.2f}s"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--time-scale", type=float, default=1.0, help="real seconds per emulated second (default 1)")
    parser.add_argument("--channel", choices=("aiogram", "ptb"), default="aiogram")
    parser.add_argument("--tappers", type=int, default=5, help="residents tapping the menu (default 5)")
    parser.add_argument("--tap-every", type=float, default=2.0, help="emulated seconds between taps (default 2)")
    parser.add_argument("--blocked", type=float, default=0.0, help="share of recipients who blocked the bot")
    parser.add_argument("--share-429", type=float, default=0.0, help="share of sends refused with an injected 429")
    parser.add_argument("--share-5xx", type=float, default=0.0, help="share of sends failing with an injected 502")
    args = parser.parse_args(argv)
    if not 0 < args.time_scale <= 1:
        parser.error("--time-scale must be in (0, 1]")
    if args.tappers < 1 or args.recipients < 100:
        parser.error("at least 1 tapper and 100 recipients")
    return args


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(parse()))
