"""Queueing messages the bot sends on its own: a notice becomes an outbox row in the caller's transaction.

Call :func:`queue` with the unit of work of the change that causes the message, before its commit: the change
and the message are durable together, or neither is. The dispatcher (``bot.channels.dispatcher``) renders the row
in the recipient's language and sends it through the send gate.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bot.domain.notices import Choice, Notice, Priority
from bot.domain.wire import to_json
from bot.services.ports import UnitOfWork

NOTICE = "notice"
POLL = "poll"


def notice_payload(notice: Notice) -> dict[str, Any]:
    """What the outbox keeps of a notice (JSON)."""
    return {
        "template": notice.template,
        "context": to_json(notice.context),
        "locale": notice.locale,
        "photo": notice.photo,
        "edit": notice.edit,
        "paid": notice.paid,
        "buttons": [[_button(c) for c in row] for row in notice.choices],
    }


def _button(choice: Choice) -> dict[str, Any]:
    if choice.url is not None:
        return {"label": choice.label, "url": choice.url, "label_context": to_json(choice.label_context)}
    if choice.action is None:
        return {"label": choice.label, "start": choice.start, "label_context": to_json(choice.label_context)}
    return {
        "label": choice.label,
        "ns": choice.action.namespace,
        "action": choice.action.action,
        "args": list(choice.args),
        "label_context": to_json(choice.label_context),
    }


def delivery_row(
    notice: Notice,
    now: datetime,
    not_before: datetime | None,
    *,
    priority: Priority | None = None,
    campaign_id: int | None = None,
) -> dict[str, Any]:
    """One outbox row of a fan-out (``uow.campaigns.add_deliveries``): a notice to one recipient, held until
    ``not_before`` (their quiet hours end), at ``priority`` (the notice's own by default)."""
    row: dict[str, Any] = {
        "chat_id": notice.chat_id,
        "kind": NOTICE,
        "payload": notice_payload(notice),
        "priority": int(notice.priority if priority is None else priority),
        "key": notice.key,
        "status": "pending",
        "attempts": 0,
        "created_at": now,
        "not_before": not_before,
    }
    if campaign_id is not None:
        row["campaign_id"] = campaign_id
    return row


async def queue(uow: UnitOfWork, notice: Notice, now: datetime) -> int | None:
    """Queue one notice in ``uow``'s transaction; returns the row id (None when its key was queued before)."""
    return await uow.outbox.add(
        notice.chat_id,
        NOTICE,
        notice_payload(notice),
        now=now,
        priority=int(notice.priority),
        key=notice.key,
        ref=notice.ref,
    )


async def queue_all(uow: UnitOfWork, notices: Iterable[Notice], now: datetime) -> None:
    for notice in notices:
        await queue(uow, notice, now)


async def queue_poll(
    uow: UnitOfWork,
    chat_id: int,
    *,
    question: str,
    options: tuple[str, ...],
    correct_option_ids: tuple[int, ...],
    explanation: str | None,
    open_period: int | None,
    tag: str,
    now: datetime,
    key: str | None = None,
) -> int | None:
    """Queue a quiz poll; once sent, the feature that owns ``tag`` learns the poll's id (``poll_sent``)."""
    payload = {
        "question": question,
        "options": list(options),
        "correct_option_ids": list(correct_option_ids),
        "explanation": explanation,
        "open_period": open_period,
        "tag": tag,
    }
    return await uow.outbox.add(chat_id, POLL, payload, now=now, key=key)
