"""Bot API update JSON → Incoming. Both channels feed the same translator, so both see identical input.

The translator is also the check of an update's shape: every field it reads must have the type the Bot API gives it
(an object, an integer, a string, a list), or :class:`Malformed` is raised and the inbox sets the update aside. The
core only ever sees what this module extracted, so nothing else needs to read the update (neither library parses
it on the way: that cost about as much as translating it twenty times, for fields nobody reads).
"""

from __future__ import annotations

from typing import Any

from bot.conversation.incoming import ChatType, Incoming, Location, Member, PollAnswer
from bot.domain.telegram_html import entities_to_html


class Malformed(ValueError):
    """A field the bot reads does not have the type the Bot API gives it."""


def to_incoming(update: dict[str, Any], bot_username: str = "") -> Incoming | None:
    """Translate one update; None for kinds the bot does not handle (channel posts, edits, ...)."""
    update = _obj(update, "update")
    update_id = _int(update.get("update_id"), "update_id")
    if "callback_query" in update:
        return _callback(update_id, _obj(update["callback_query"], "callback_query"))
    if "poll_answer" in update:
        return _poll_answer(update_id, _obj(update["poll_answer"], "poll_answer"))
    if "message" in update:
        return _message(update_id, _obj(update["message"], "message"), bot_username)
    return None


# ---- the Bot API's types, checked ------------------------------------------------------------------------------


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} is not an object")
    return value


def _int(value: Any, what: str) -> int:
    if type(value) is not int:  # bool is an int to Python, not to the Bot API
        raise Malformed(f"{what} is not an integer")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Malformed(f"{what} is not a string")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Malformed(f"{what} is not a list")
    return value


def _number(value: Any, what: str) -> float:
    if type(value) not in (int, float):
        raise Malformed(f"{what} is not a number")
    return float(value)


def _optional_int(value: Any, what: str) -> int | None:
    return None if value is None else _int(value, what)


def _optional_str(value: Any, what: str) -> str | None:
    return None if value is None else _str(value, what)


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    return [_obj(item, what) for item in _list(value, what)]


# ---- translation --------------------------------------------------------------------------------------------------


def _user_fields(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": _int(user.get("id"), "from.id"),
        "language_code": _optional_str(user.get("language_code"), "from.language_code"),
        "first_name": _optional_str(user.get("first_name"), "from.first_name") or "",
        "username": _optional_str(user.get("username"), "from.username"),
    }


def _chat_fields(chat: dict[str, Any]) -> dict[str, Any]:
    kind = _optional_str(chat.get("type"), "chat.type") or "private"
    try:
        chat_type = ChatType(kind)
    except ValueError:
        chat_type = ChatType.PRIVATE  # a kind of chat newer than this code: treated as private
    return {
        "chat_id": _int(chat.get("id"), "chat.id"),
        "chat_type": chat_type,
        "chat_title": _optional_str(chat.get("title"), "chat.title"),
    }


def _callback(update_id: int, query: dict[str, Any]) -> Incoming:
    sender = _obj(query.get("from"), "callback_query.from")
    message = _obj(query.get("message") or {}, "callback_query.message")
    chat = message.get("chat") or {"id": sender.get("id"), "type": "private"}
    return Incoming(
        update_id=update_id,
        **_user_fields(sender),
        **_chat_fields(_obj(chat, "callback_query.message.chat")),
        callback_id=_str(query.get("id"), "callback_query.id"),
        # Inline keyboards of other clients may carry no data (game buttons): treat as empty, which is invalid.
        callback_data=_optional_str(query.get("data"), "callback_query.data") or "",
        callback_message_id=_optional_int(message.get("message_id"), "callback_query.message.message_id"),
        callback_on_photo=bool(message.get("photo")),
        sent_at=_optional_int(message.get("date"), "callback_query.message.date"),  # of the message with the button
    )


def _poll_answer(update_id: int, answer: dict[str, Any]) -> Incoming | None:
    user = answer.get("user")
    if user is None:  # answered on behalf of a chat (anonymous admin): cannot be credited to a person
        return None
    fields = _user_fields(_obj(user, "poll_answer.user"))
    options = _list(answer.get("option_ids", []), "poll_answer.option_ids")
    return Incoming(
        update_id=update_id,
        **fields,
        chat_id=fields["user_id"],
        poll_answer=PollAnswer(
            _str(answer.get("poll_id"), "poll_answer.poll_id"),
            tuple(_int(i, "poll_answer.option_ids") for i in options),
        ),
    )


def _message(update_id: int, message: dict[str, Any], bot_username: str) -> Incoming | None:
    chat = _chat_fields(_obj(message.get("chat"), "message.chat"))  # every message has one
    sender = message.get("from")
    joined = message.get("new_chat_members")
    if sender is None:
        return None
    sender = _obj(sender, "message.from")
    if sender.get("is_bot") and not joined:
        return None
    fields: dict[str, Any] = {
        "update_id": update_id,
        **_user_fields(sender),
        **chat,
        "message_id": _optional_int(message.get("message_id"), "message.message_id"),
        "sent_at": _optional_int(message.get("date"), "message.date"),
    }
    replied = _obj(message.get("reply_to_message") or {}, "message.reply_to_message")
    if replied.get("from") and not replied.get("forum_topic_created"):  # in a forum, every message "replies" to it
        fields["reply_to_user_id"] = _int(_obj(replied["from"], "reply_to_message.from").get("id"), "reply.from.id")
    text = _optional_str(message.get("text"), "message.text")
    if text is not None:
        entities = _objects(message.get("entities") or [], "message.entities")
        fields["text"] = text
        fields["html"] = entities_to_html(text, entities)
        command = _command(text, entities, bot_username)
        if command is not None:
            fields["command"], fields["args"] = command
    caption = _optional_str(message.get("caption"), "message.caption")
    if caption is not None:
        fields["text"] = caption
        fields["html"] = entities_to_html(caption, _objects(message.get("caption_entities") or [], "caption_entities"))
    if message.get("photo"):
        # Telegram sends several sizes of one photo, smallest first: the last one is the original.
        largest = _objects(message["photo"], "message.photo")[-1]
        fields["photo_file_ids"] = (_str(largest.get("file_id"), "photo.file_id"),)
        fields["file_size"] = _optional_int(largest.get("file_size"), "photo.file_size")
    if message.get("document"):
        document = _obj(message["document"], "message.document")
        fields["document_file_id"] = _str(document.get("file_id"), "document.file_id")
        fields["file_size"] = _optional_int(document.get("file_size"), "document.file_size")
    if message.get("location"):
        loc = _obj(message["location"], "message.location")
        fields["location"] = Location(
            _number(loc.get("latitude"), "location.latitude"), _number(loc.get("longitude"), "location.longitude")
        )
    if joined:
        fields["new_members"] = tuple(
            Member(
                _int(m.get("id"), "new_chat_members.id"),
                _optional_str(m.get("first_name"), "new_chat_members.first_name") or "",
                bool(m.get("is_bot")),
            )
            for m in _objects(joined, "message.new_chat_members")
        )
    return Incoming(**fields)


def _command(text: str, entities: list[dict[str, Any]], bot_username: str) -> tuple[str, str] | None:
    """``/cmd@bot args`` at the start of a message; commands addressed to another bot are not ours."""
    first = next((e for e in entities if e.get("type") == "bot_command" and e.get("offset") == 0), None)
    if first is None and not text.startswith("/"):
        return None
    head, _, args = text.partition(" ")
    name, _, target = head[1:].partition("@")
    if target and bot_username and target.lower() != bot_username.lower():
        return None
    if not name or len(name) > 32:
        return None
    return name.lower(), args.strip()
