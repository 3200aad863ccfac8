"""Messages the bot sends on its own (to someone other than the sender of an update, or on a timer).

A :class:`Notice` is written to the outbox in the transaction of the change that causes it and rendered in the
recipient's language when it is sent. Its buttons reference actions by :class:`ActionRef`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from bot.domain.actions import ActionRef


class Priority(IntEnum):
    """Lower goes first: a person waiting for an answer before a notice, a notice before bulk."""

    REPLY = 0
    NOTICE = 10
    BULK = 20


@dataclass(frozen=True)
class Choice:
    """A button a notice offers: a label key and an action with its arguments (or a deep link into the bot)."""

    label: str
    action: ActionRef | None = None
    args: tuple[int | str, ...] = ()
    label_context: dict[str, Any] = field(default_factory=dict)
    start: str | None = None  # instead of an action: open a private chat with the bot with this /start payload
    url: str | None = None  # instead of an action: open a web page

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.action, self.start, self.url)) != 1:
            raise TypeError("a choice has exactly one of an action, a start payload or a URL")
        if self.action is not None:
            self.action.check(self.args)


@dataclass(frozen=True)
class Notice:
    """A message in ``locale`` to ``chat_id``; a photo with the text as caption when ``photo`` is set.

    ``ref`` names the message so a later notice with ``edit=True`` and the same ref and chat edits it (a report's
    card in the staff group follows the report). ``key`` makes it once per cause.
    """

    chat_id: int
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    locale: str = "zh_Hans"
    photo: str | None = None
    choices: tuple[tuple[Choice, ...], ...] = ()
    ref: str | None = None
    edit: bool = False
    key: str | None = None
    priority: Priority = Priority.NOTICE
    paid: bool = False  # send with allow_paid_broadcast (an organiser chose to pay for speed)
