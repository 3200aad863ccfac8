"""Framework-neutral description of one update from Telegram (or the sandbox)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ChatType(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    SUPERGROUP = "supergroup"
    CHANNEL = "channel"

    @property
    def is_group(self) -> bool:
        return self in (ChatType.GROUP, ChatType.SUPERGROUP)


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class PollAnswer:
    poll_id: str
    option_ids: tuple[int, ...]


@dataclass(frozen=True)
class Member:
    """A user who joined a group (new_chat_members)."""

    user_id: int
    first_name: str
    is_bot: bool = False


@dataclass(frozen=True)
class Incoming:
    """One update, as the conversation core sees it.

    Exactly one of the "what" fields is normally set. ``update_id`` is kept for logs and de-duplication.
    """

    update_id: int
    user_id: int
    chat_id: int
    chat_type: ChatType = ChatType.PRIVATE
    language_code: str | None = None
    first_name: str = ""
    username: str | None = None
    message_id: int | None = None
    sent_at: int | None = None  # the date Telegram stamped on the message (for a button: on its message)
    command: str | None = None
    args: str = ""
    text: str | None = None
    html: str | None = None  # the text (or caption) with its formatting, as Telegram-HTML source
    callback_id: str | None = None
    callback_data: str | None = None
    callback_message_id: int | None = None
    callback_on_photo: bool = False  # the pressed button is under a photo (its text is the photo's caption)
    photo_file_ids: tuple[str, ...] = ()
    document_file_id: str | None = None
    file_size: int | None = None  # bytes of the photo or document, as Telegram reported it (None: not told)
    location: Location | None = None
    poll_answer: PollAnswer | None = None
    new_members: tuple[Member, ...] = ()
    chat_title: str | None = None
    reply_to_user_id: int | None = None  # the author of the message this one replies to (not a forum topic's start)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def is_private(self) -> bool:
        return self.chat_type == ChatType.PRIVATE

    @property
    def is_callback(self) -> bool:
        return self.callback_id is not None

    @property
    def deep_link(self) -> str | None:
        """The /start payload (``t.me/<bot>?start=<payload>``), if any."""
        if self.command == "start" and self.args:
            return self.args.split()[0]
        return None
