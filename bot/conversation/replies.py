"""Reply actions returned by handlers, and their rendered form executed by channel adapters.

Handlers speak in templates and label keys (no user-facing literals). The core renders them in the
recipient's locale into ``Out*`` objects, which carry plain text and are what a channel sends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class Button:
    """An inline or reply keyboard button. ``label`` is a key in ``labels.yaml`` of the locale."""

    label: str
    data: str | None = None  # callback data (inline), already encoded by the callback codec
    url: str | None = None  # inline URL button
    request_location: bool = False  # reply keyboard: share location
    label_context: dict[str, Any] = field(default_factory=dict)


Keyboard = tuple[tuple[Button, ...], ...]


def keyboard(*rows: list[Button] | tuple[Button, ...]) -> Keyboard:
    """Build an immutable keyboard from rows of buttons."""
    return tuple(tuple(r) for r in rows)


@dataclass(frozen=True)
class SendText:
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    buttons: Keyboard = ()
    reply_keyboard: Keyboard = ()
    remove_reply_keyboard: bool = False
    chat_id: int | None = None  # None: the chat the update came from
    locale: str | None = None  # None: the recipient's locale (the sender's when replying)


@dataclass(frozen=True)
class EditText:
    """Edit the message that carried the pressed button (or ``message_id``). Under a photo the caption is edited:
    ``caption`` None finds out from the pressed message, True or False says so (a ``message_id`` given)."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    buttons: Keyboard = ()
    message_id: int | None = None
    caption: bool | None = None


@dataclass(frozen=True)
class AnswerCallback:
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    alert: bool = False


@dataclass(frozen=True)
class SendPhoto:
    photo: str  # file_id, URL or local path
    caption_template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    buttons: Keyboard = ()
    chat_id: int | None = None
    locale: str | None = None  # None: the recipient's locale (the sender's when replying)


@dataclass(frozen=True)
class SendDocument:
    """Send a file the bot made (a certificate PDF) as a document; ``filename`` is what the recipient sees."""

    path: str  # a local file, uploaded when sent (at most 50 MB)
    filename: str
    caption_template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    chat_id: int | None = None
    locale: str | None = None  # None: the recipient's locale (the sender's when replying)


@dataclass(frozen=True)
class SendQuizPoll:
    question: str
    options: tuple[str, ...]
    correct_option_ids: tuple[int, ...]
    explanation: str | None = None
    open_period: int | None = None
    chat_id: int | None = None
    tag: str = ""  # lets the core link the sent poll id back to a quiz (see PollSent)


Action = SendText | EditText | AnswerCallback | SendPhoto | SendDocument | SendQuizPoll


# ---- rendered, channel-facing ---------------------------------------------------------------


@dataclass(frozen=True)
class OutButton:
    text: str
    callback_data: str | None = None
    url: str | None = None
    request_location: bool = False


OutKeyboard = tuple[tuple[OutButton, ...], ...]


@dataclass(frozen=True)
class OutMessage:
    chat_id: int
    text: str
    inline_keyboard: OutKeyboard = ()
    reply_keyboard: OutKeyboard = ()
    remove_reply_keyboard: bool = False
    parse_mode: str = "HTML"
    paid: bool = False  # allow_paid_broadcast: up to 1000 msg/s, 0.1 Star each


@dataclass(frozen=True)
class OutEdit:
    chat_id: int
    message_id: int
    text: str
    inline_keyboard: OutKeyboard = ()
    parse_mode: str = "HTML"
    caption: bool = False  # the message is a photo: edit its caption


@dataclass(frozen=True)
class OutCallbackAnswer:
    callback_id: str
    text: str | None = None
    alert: bool = False


@dataclass(frozen=True)
class OutPhoto:
    chat_id: int
    photo: str
    caption: str | None = None
    inline_keyboard: OutKeyboard = ()
    parse_mode: str = "HTML"
    paid: bool = False


@dataclass(frozen=True)
class OutDocument:
    chat_id: int
    document: str  # local path of the file to upload
    filename: str
    caption: str | None = None
    parse_mode: str = "HTML"


@dataclass(frozen=True)
class OutPoll:
    chat_id: int
    question: str
    options: tuple[str, ...]
    correct_option_ids: tuple[int, ...]
    explanation: str | None = None
    open_period: int | None = None
    tag: str = ""


Outgoing = OutMessage | OutEdit | OutCallbackAnswer | OutPhoto | OutDocument | OutPoll


# ---- rendered actions as JSON (replies wait in the outbox until Telegram has them) ----------------------------

_OUT_KINDS: dict[str, type[Any]] = {
    "out.message": OutMessage,
    "out.edit": OutEdit,
    "out.answer": OutCallbackAnswer,
    "out.photo": OutPhoto,
    "out.document": OutDocument,
    "out.poll": OutPoll,
}
_KIND_OF = {cls: kind for kind, cls in _OUT_KINDS.items()}
_FIELDS = {cls: tuple(f.name for f in fields(cls)) for cls in (*_OUT_KINDS.values(), OutButton)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, OutButton):
        return {name: getattr(value, name) for name in _FIELDS[OutButton]}
    return value


def out_to_json(item: Outgoing) -> tuple[str, dict[str, Any]]:
    """(kind, payload) of a rendered action: what ``dataclasses.asdict`` gives, as JSON would store it (lists for
    tuples), without its deep copies (it cost 5% of handling a tap)."""
    return _KIND_OF[type(item)], {name: _plain(getattr(item, name)) for name in _FIELDS[type(item)]}


def out_from_json(kind: str, payload: dict[str, Any]) -> Outgoing:
    """The rendered action back from :func:`out_to_json`."""
    cls = _OUT_KINDS[kind]
    fields = dict(payload)
    for name in ("inline_keyboard", "reply_keyboard"):
        if name in fields:
            fields[name] = tuple(tuple(OutButton(**b) for b in row) for row in fields[name])
    for name in ("options", "correct_option_ids"):
        if name in fields:
            fields[name] = tuple(fields[name])
    item: Outgoing = cls(**fields)
    return item


def is_out_kind(kind: str) -> bool:
    return kind in _OUT_KINDS
