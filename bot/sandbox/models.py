"""The emulator's state objects and their Telegram (Bot API) JSON shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ChatType = Literal["private", "group", "supergroup"]

# Bot API 9.x: ChatFullInfo requires these; aiogram refuses getChat results without them.
ACCEPTED_GIFT_TYPES = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}
# Types delivered when a bot never said otherwise (Telegram's default for allowed_updates).
DEFAULT_ALLOWED = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "callback_query",
        "inline_query",
        "chosen_inline_result",
        "poll",
        "poll_answer",
        "my_chat_member",
        "shipping_query",
        "pre_checkout_query",
        "chat_join_request",
    }
)


@dataclass
class SimUser:
    """A simulated resident (a human Telegram account)."""

    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def to_api(self) -> dict[str, Any]:
        """Telegram User object."""
        data: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if (value := getattr(self, key)) is not None:
                data[key] = value
        return data

    def to_view(self) -> dict[str, Any]:
        """Shape used by the user-side API."""
        return self.to_api()


@dataclass
class SimBot:
    """One bot token served by the emulator, with its commands."""

    id: int
    token: str
    first_name: str
    username: str
    commands: dict[tuple[str, str], list[dict[str, str]]] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """Telegram User object for the bot (as in message.from)."""
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}

    def get_me(self) -> dict[str, Any]:
        """getMe result: the User object plus bot-only flags."""
        return {
            **self.to_api(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }


@dataclass
class SimChat:
    """A private chat (id = user id) or a group (negative id)."""

    id: int
    type: ChatType
    title: str | None = None
    user: SimUser | None = None
    members: list[int] = field(default_factory=list)
    bot_ids: set[int] = field(default_factory=set)
    creator_id: int | None = None

    @property
    def is_group(self) -> bool:
        """Whether this is a group or supergroup."""
        return self.type != "private"

    def to_api(self) -> dict[str, Any]:
        """Telegram Chat object (short form used inside messages)."""
        if self.user is not None:
            data = self.user.to_api()
            data.pop("is_bot")
            data.pop("language_code", None)
            return {"id": self.id, "type": self.type, **{k: v for k, v in data.items() if k != "id"}}
        return {"id": self.id, "type": self.type, "title": self.title or ""}

    def full_info(self) -> dict[str, Any]:
        """getChat result (ChatFullInfo), with the fields the libraries require."""
        return {
            **self.to_api(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": ACCEPTED_GIFT_TYPES,
        }


@dataclass
class StoredFile:
    """An uploaded file, reachable by file_id and by file_path."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    kind: Literal["photo", "document"]
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0

    def to_api(self) -> dict[str, Any]:
        """getFile result."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }

    def photo_sizes(self) -> list[dict[str, Any]]:
        """Telegram's `photo` array: smallest first, original last."""
        return [
            {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "file_size": len(self.data),
                "width": self.width,
                "height": self.height,
            }
        ]

    def document(self) -> dict[str, Any]:
        """Telegram Document object."""
        data: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.file_name:
            data["file_name"] = self.file_name
        if self.mime_type:
            data["mime_type"] = self.mime_type
        return data


@dataclass
class PollState:
    """A poll and its votes; rendered into messages and poll updates on demand."""

    id: str
    bot_id: int
    question: str
    options: list[str]
    type: Literal["regular", "quiz"] = "regular"
    is_anonymous: bool = True
    allows_multiple_answers: bool = False
    allows_revoting: bool = False
    correct_option_ids: list[int] | None = None
    explanation: str | None = None
    open_period: int | None = None
    close_at: float | None = None  # wall seconds
    is_closed: bool = False
    votes: dict[int, list[int]] = field(default_factory=dict)
    chat_id: int = 0
    message_id: int = 0

    def persistent_id(self, index: int) -> str:
        """Stable option id (Bot API 9.6), unique within the poll."""
        return f"{self.id}-{index}"

    def closed(self, now: float) -> bool:
        """Whether the poll is closed (manually or because open_period ran out)."""
        return self.is_closed or (self.close_at is not None and now >= self.close_at)

    def to_api(self, now: float) -> dict[str, Any]:
        """Telegram Poll object, as the sending bot sees it (correct answers included for quizzes)."""
        counts = [0] * len(self.options)
        for chosen in self.votes.values():
            for index in chosen:
                counts[index] += 1
        data: dict[str, Any] = {
            "id": self.id,
            "question": self.question,
            "options": [
                {"persistent_id": self.persistent_id(i), "text": text, "voter_count": counts[i]}
                for i, text in enumerate(self.options)
            ],
            "total_voter_count": sum(1 for chosen in self.votes.values() if chosen),
            "is_closed": self.closed(now),
            "is_anonymous": self.is_anonymous,
            "type": self.type,
            "allows_multiple_answers": self.allows_multiple_answers,
            "allows_revoting": self.allows_revoting,
            "members_only": False,
        }
        if self.correct_option_ids is not None:
            data["correct_option_ids"] = list(self.correct_option_ids)
        if self.explanation:
            data["explanation"] = self.explanation
        if self.open_period is not None:
            data["open_period"] = self.open_period
        if self.close_at is not None:
            data["close_date"] = int(self.close_at)
        return data


@dataclass
class StoredMessage:
    """One message of a transcript: its Telegram JSON plus sandbox bookkeeping."""

    data: dict[str, Any]
    version: int
    sender_bot_id: int | None = None  # None when a user sent it
    poll_id: str | None = None
    reply_keyboard: dict[str, Any] | None = None  # a non-inline markup sent with it (Telegram omits those)

    @property
    def message_id(self) -> int:
        """The message's id within its chat."""
        return int(self.data["message_id"])


@dataclass
class Conversation:
    """The messages of one chat as one bot sees it (private chats are per bot; groups are shared)."""

    chat: SimChat
    bot_id: int = 0  # 0 for groups, which all their bots share
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    next_message_id: int = 1
    deleted: list[tuple[int, int]] = field(default_factory=list)  # (version, message_id)
    reply_keyboard: dict[str, Any] | None = None


@dataclass
class CallbackState:
    """A pressed inline button awaiting answerCallbackQuery."""

    id: str
    bot_id: int
    user_id: int
    data: str | None
    chat_id: int = 0
    answered: bool = False
    answer: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallRecord:
    """One Bot API request, for tests that check pacing (e.g. nothing sent inside a 429 window)."""

    seq: int
    t: float  # real monotonic seconds
    bot_id: int
    method: str
    chat_id: int | str | None
    status: int  # HTTP status; 0 when the connection was dropped
    description: str | None = None
    retry_after: int | None = None
    until: float | None = None  # end of the 429 window, real monotonic seconds
    scope: str | None = None  # "bot", "chat", "group" or "fault" for 429s

    def to_view(self) -> dict[str, Any]:
        """Shape used by the user-side API."""
        return dict(self.__dict__)
