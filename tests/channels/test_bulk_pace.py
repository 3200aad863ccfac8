"""The dispatcher's bulk pace: campaign rows are handed to the gate evenly, a little under the token's limit, so they
never book its slots ahead of a reply; replies, other notices and paid broadcasts are not held back by it.

Time is fake (``FakeTime``): it moves only when the dispatcher sleeps, so the spacing is exact and takes no real time.
"""

from __future__ import annotations

from itertools import pairwise

from bot.app import App
from bot.channels.dispatcher import BULK_CATCH_UP, Dispatcher, bulk_rate
from bot.conversation.replies import OutMessage
from bot.domain.notices import Notice, Priority
from bot.runner import make_dispatcher
from tests.channels.conftest import FakeTime
from tests.support.outbox import FakeTelegram, queue_notices


class TimedTelegram(FakeTelegram):
    """Notes the (fake) time each message reaches Telegram."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__()
        self.time = time
        self.at: list[float] = []

    async def message(self, item: OutMessage) -> int:
        self.at.append(self.time())
        return await super().message(item)


async def send_everything(app: App, time: FakeTime) -> TimedTelegram:
    telegram = TimedTelegram(time)
    dispatcher: Dispatcher = make_dispatcher(app, telegram)
    dispatcher.monotonic, dispatcher.sleep = time, time.sleep
    while await dispatcher.dispatch_once():
        pass
    return telegram


def notices(chats: range, priority: Priority, *, paid: bool = False) -> list[Notice]:
    return [
        Notice(chat, "errors/generic", priority=priority, paid=paid, key=f"{priority}:{paid}:{chat}") for chat in chats
    ]


def test_bulk_rate_leaves_one_message_a_second_of_telegrams_30_for_replies() -> None:
    assert bulk_rate() == 29.0
    assert bulk_rate(((1.0, 30), (60.0, 600))) == 9.0  # the tightest limit counts


async def test_bulk_rows_go_out_evenly_below_the_token_limit(app: App, fake_time: FakeTime) -> None:
    await queue_notices(app, notices(range(1000, 1060), Priority.BULK))
    telegram = await send_everything(app, fake_time)
    assert len(telegram.at) == 60
    start = telegram.at[0]
    # The turn missed while idle goes with the first, then never faster than the bulk rate.
    assert telegram.at[: BULK_CATCH_UP + 1] == [start] * (BULK_CATCH_UP + 1)
    gaps = [later - earlier for earlier, later in pairwise(telegram.at[BULK_CATCH_UP:])]
    assert min(gaps) >= 1 / bulk_rate() - 1e-9
    # So no second holds more than the gate's window of 30: bulk rows never have to book a slot ahead of a reply.
    assert max(sum(1 for t in telegram.at if s <= t < s + 1.0) for s in telegram.at) <= 30


async def test_replies_notices_and_paid_broadcasts_are_not_held_back(app: App, fake_time: FakeTime) -> None:
    await queue_notices(
        app,
        [
            *notices(range(1000, 1040), Priority.REPLY),
            *notices(range(2000, 2040), Priority.NOTICE),
            *notices(range(3000, 3040), Priority.BULK, paid=True),  # their own allowance of 1,000/s
        ],
    )
    telegram = await send_everything(app, fake_time)
    assert len(telegram.at) == 120
    assert fake_time.sleeps == [] and set(telegram.at) == {fake_time()}
