"""Notices from services (messages for other people, from use cases and durable jobs) as reply actions."""

from __future__ import annotations

from collections.abc import Iterable

from bot.conversation.callbacks import CallbackCodec
from bot.conversation.core import Core
from bot.conversation.incoming import Incoming
from bot.conversation.replies import Action, Button, Keyboard, Outgoing, SendPhoto, SendText
from bot.services.jobs import Choice, Notice


def notice_actions(notices: Iterable[Notice], codec: CallbackCodec) -> list[Action]:
    """One message (a photo with caption when the notice has a photo) per notice, in the recipient's language."""
    actions: list[Action] = []
    for n in notices:
        buttons = _keyboard(n.choices, codec)
        if n.photo:
            actions.append(SendPhoto(n.photo, n.template, n.context, buttons, n.chat_id, n.locale))
        else:
            actions.append(SendText(n.template, n.context, buttons, chat_id=n.chat_id, locale=n.locale))
    return actions


def render_notices(core: Core, notices: Iterable[Notice]) -> list[Outgoing]:
    """Rendered, channel-ready messages for notices produced outside any update (timers)."""
    actions = notice_actions(notices, core.router.codec)
    return core.renderer.render(actions, Incoming(update_id=0, user_id=0, chat_id=0), "zh_Hans")


def _keyboard(rows: tuple[tuple[Choice, ...], ...], codec: CallbackCodec) -> Keyboard:
    return tuple(
        tuple(
            Button(c.label, data=codec.encode(*c.action.split(".", 1), *c.args), label_context=c.label_context)
            for c in row
        )
        for row in rows
    )


def report_actions(notices: Iterable[Notice]) -> list[Action]:
    """Notices of the report feature, whose buttons belong to its three routers."""
    from handlers import report_followup, report_staff, reports

    codec = CallbackCodec()
    for feature in (reports.router, report_followup.router, report_staff.router):
        codec.merge(feature.codec)
    return notice_actions(notices, codec)
