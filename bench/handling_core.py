"""The in-process part of bench.handling: CPU per tap from the inbox to the outbox, without HTTP.

    python -m bench.handling_core [--updates 300] [--repeats 10]

The same taps as ``bench.handling`` (registered residents tap the main menu's 设置 button), handed to the real
``Inbox`` as getUpdates would return them (batches of 50), handled by the real inbox worker, core, services and a
scratch SQLite database, and delivered by the real outbox dispatcher to a sender that returns at once. A burst ends
when the sender has been given both replies of every tap. Prints the CPU time of the process per tap (median and
best of the timed bursts) and the garbage collector's share, measured with ``gc.callbacks``. No baseline: this is
the part of bench.handling's figure that is Sicheng's own, for measuring a change to it on its own (the HTTP
benchmark's noise on a shared machine hides a few percent).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.handling import FIRST_USER, WARMUP, main_menu, register_residents
from bot.app import build_app, prepare_database
from bot.config import DatabaseSettings, Settings, TelegramSettings
from bot.runner import make_dispatcher, make_inbox
from bot.sandbox.core import DEFAULT_TOKEN

BATCH = 50  # updates per intake call, as a getUpdates answer under load


class QuickSender:
    """Takes every reply at once (the Bot API's side is bench.handling's)."""

    def __init__(self) -> None:
        self.calls = 0
        self.expected = 0
        self.done = asyncio.Event()
        self._message_id = 1_000_000

    def _count(self) -> None:
        self.calls += 1
        if self.calls >= self.expected:
            self.done.set()

    async def message(self, item: Any) -> int:
        self._count()
        self._message_id += 1
        return self._message_id

    async def edit(self, item: Any) -> None:
        self._count()

    async def edit_caption(self, item: Any) -> None:
        self._count()

    async def answer(self, item: Any) -> None:
        self._count()

    async def photo(self, item: Any) -> int:
        return await self.message(item)

    async def document(self, item: Any) -> int:
        return await self.message(item)

    async def poll(self, item: Any) -> tuple[str, int]:
        return "poll", await self.message(item)


def tap(update_id: int, user_id: int, data: str) -> dict[str, Any]:
    """A resident's tap on their menu message, as Telegram sends it."""
    person = {"id": user_id, "is_bot": False, "first_name": "居民", "language_code": "zh-hans"}
    bot = {"id": int(DEFAULT_TOKEN.split(":")[0]), "is_bot": True, "first_name": "Sicheng"}
    chat = {"id": user_id, "type": "private", "first_name": "居民"}
    message = {"message_id": 5, "date": 1_700_000_000, "chat": chat, "from": bot, "text": "主菜单"}
    query = {"id": str(update_id), "from": person, "message": message, "chat_instance": "1", "data": data}
    return {"update_id": update_id, "callback_query": query}


async def main(args: argparse.Namespace) -> None:
    user_ids = [FIRST_USER + n for n in range(args.updates)]
    _, _, data = main_menu()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        await prepare_database(url)
        telegram = TelegramSettings(chat_per_second=1000.0)
        app = await build_app(Settings(database=DatabaseSettings(url=url), telegram=telegram))
        try:
            await register_residents(app, user_ids)
            app.core.settings["bot_username"] = "sicheng_bot"
            sender = QuickSender()
            inbox = make_inbox(app, make_dispatcher(app, sender))
            stop = asyncio.Event()
            worker = asyncio.create_task(inbox.run(stop))
            next_id = iter(range(1, 10**9))

            async def burst(users: list[int]) -> None:
                sender.expected = sender.calls + 2 * len(users)
                sender.done.clear()
                for start in range(0, len(users), BATCH):
                    await inbox.take([tap(next(next_id), user, data) for user in users[start : start + BATCH]])
                    await asyncio.sleep(0)
                await asyncio.wait_for(sender.done.wait(), 120)

            await burst(user_ids[:WARMUP])
            gc.collect()
            gc.freeze()  # as run_bot does after start-up
            collecting = [0.0, 0.0]

            def timed(phase: str, _info: dict[str, Any]) -> None:
                if phase == "start":
                    collecting[1] = time.perf_counter()
                else:
                    collecting[0] += time.perf_counter() - collecting[1]

            gc.callbacks.append(timed)
            per_tap = []
            try:
                for _ in range(args.repeats):
                    cpu = time.process_time()
                    await burst(user_ids)
                    per_tap.append((time.process_time() - cpu) / len(user_ids) * 1000)
            finally:
                gc.callbacks.remove(timed)
            stop.set()
            await asyncio.wait_for(worker, 20)
        finally:
            await app.aclose()
    taps = args.repeats * len(user_ids)
    print(
        f"{args.updates} residents tap 设置; inbox → core → outbox → a sender that returns at once, "
        f"median of {args.repeats} bursts"
    )
    print(
        f"CPU ms/tap: median {statistics.median(per_tap):.3f}, best {min(per_tap):.3f} "
        f"(runs {', '.join(f'{v:.3f}' for v in per_tap)}); garbage collection {collecting[0] / taps * 1e6:.0f} µs/tap"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.handling_core", description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="taps per burst = distinct residents (default 300)")
    parser.add_argument("--repeats", type=int, default=10, help="timed bursts (default 10)")
    args = parser.parse_args(argv)
    if args.updates < WARMUP:
        parser.error(f"--updates must be at least {WARMUP}")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
