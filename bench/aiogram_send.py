"""CPU per reply sent on the aiogram channel: Sicheng's sender (JSON bodies, slim methods) against aiogram's own way.

    python -m bench.aiogram_send [--sends 1000] [--repeats 5]

Each contender sends the same settings page — its text and the main menu's inline keyboard of eight buttons, what
bench.handling's taps get back — to ``--sends`` residents, 16 calls in flight, over HTTP to the sandbox emulator
running in a child process. Rounds go in turns (aiogram's way, Sicheng's, aiogram's, ...) so a shared machine
slowing down weighs on both; the median CPU time of this process per call is printed, and the ratio.

* aiogram's way: ``bot.send_message(chat, text, reply_markup=InlineKeyboardMarkup(...))`` through aiogram's
  ``AiohttpSession`` (a form: each field JSON-encoded, the form encoded by aiohttp; the answer parsed into a
  ``Message``), with Sicheng's send gate installed as in the channel.
* Sicheng's: ``AiogramSender.message`` as the outbox dispatcher calls it: ``bot.channels.aiogram_session.JsonSession``
  and the sender's ``sendMessage`` method with the keyboard as the Bot API's JSON, answered with the message id.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence

from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bench.handling import FIRST_USER, UNLIMITED_TOKEN, _driver, main_menu
from bench.remote import emulator_process
from bot.channels.aiogram_channel import AiogramSender, make_bot
from bot.channels.gate import GateLimits, SendGate
from bot.conversation.replies import OutButton, OutMessage
from bot.sandbox.core import DEFAULT_TOKEN

IN_FLIGHT = 16
TEXT = "⚙️ 设置\n\n语言：中文\n社区：示范社区 · 1号楼\n通知：开启（22:00–08:00 免打扰）\n\n请选择要修改的项目："


def gate() -> SendGate:
    limits = GateLimits.from_rates(1000.0, 1000)
    return SendGate(dataclasses.replace(limits, token=UNLIMITED_TOKEN))


async def timed(send: Callable[[int], Awaitable[object]], chats: Sequence[int]) -> float:
    """CPU seconds of this process per call, ``IN_FLIGHT`` calls at a time."""
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(chat: int) -> None:
        async with slots:
            await send(chat)

    start = time.process_time()
    await asyncio.gather(*(one(chat) for chat in chats))
    return (time.process_time() - start) / len(chats)


async def main(args: argparse.Namespace) -> None:
    menu_text, markup, _ = main_menu()
    chats = [FIRST_USER + n for n in range(args.sends)]
    rows = tuple(
        tuple(OutButton(b["text"], callback_data=b["callback_data"]) for b in row) for row in markup["inline_keyboard"]
    )
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(**button) for button in row] for row in markup["inline_keyboard"]]
    )
    async with emulator_process(_driver) as emulator:
        await emulator.call("add_residents", chats, menu_text, markup)
        api = TelegramAPIServer.from_base(emulator.base_url)
        theirs = make_bot(DEFAULT_TOKEN, emulator.base_url, gate(), session=AiohttpSession(api=api))
        ours = AiogramSender(make_bot(DEFAULT_TOKEN, emulator.base_url, gate()))
        contenders: dict[str, Callable[[int], Awaitable[object]]] = {
            "aiogram's way": lambda chat: theirs.send_message(chat, TEXT, reply_markup=keyboard),
            "Sicheng's sender": lambda chat: ours.message(OutMessage(chat, TEXT, inline_keyboard=rows)),
        }
        results: dict[str, list[float]] = {name: [] for name in contenders}
        try:
            for send in contenders.values():  # warm-up: connections, caches of parametrised response types
                await timed(send, chats[:100])
            for _ in range(args.repeats):
                for name, send in contenders.items():
                    results[name].append(await timed(send, chats))
        finally:
            await theirs.session.close()
            await ours.bot.session.close()
    print(f"{args.sends} settings pages with an 8-button keyboard per round, {IN_FLIGHT} in flight, rounds in turns")
    for name, runs in results.items():
        shown = ", ".join(f"{r * 1000:.3f}" for r in runs)
        print(f"{name:17} {statistics.median(runs) * 1000:.3f} ms of CPU per call (rounds {shown})")
    base, ours_ = (statistics.median(runs) for runs in results.values())
    print(f"ratio (Sicheng's CPU per call / aiogram's) = {ours_ / base:.2f}")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.aiogram_send", description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1000, help="calls per round (default 1000)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds per contender (default 5)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
