"""Bot API update JSON → Incoming. Both channels feed the same translator, so both see identical input."""

from __future__ import annotations

from typing import Any

from bot.conversation.incoming import ChatType, Incoming, Location, Member, PollAnswer
from bot.domain.telegram_html import entities_to_html


def to_incoming(update: dict[str, Any], bot_username: str = "") -> Incoming | None:
    """Translate one update; None for kinds the bot does not handle (channel posts, edits, ...)."""
    update_id = int(update["update_id"])
    if "callback_query" in update:
        return _callback(update_id, update["callback_query"])
    if "poll_answer" in update:
        return _poll_answer(update_id, update["poll_answer"])
    if "message" in update:
        return _message(update_id, update["message"], bot_username)
    return None


def _user_fields(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "user_id": int(user["id"]),
        "language_code": user.get("language_code"),
        "first_name": user.get("first_name", ""),
        "username": user.get("username"),
    }


def _chat_fields(chat: dict[str, Any]) -> dict[str, Any]:
    try:
        chat_type = ChatType(chat.get("type", "private"))
    except ValueError:
        chat_type = ChatType.PRIVATE
    return {"chat_id": int(chat["id"]), "chat_type": chat_type, "chat_title": chat.get("title")}


def _callback(update_id: int, query: dict[str, Any]) -> Incoming:
    message = query.get("message") or {}
    chat = message.get("chat") or {"id": query["from"]["id"], "type": "private"}
    return Incoming(
        update_id=update_id,
        **_user_fields(query["from"]),
        **_chat_fields(chat),
        callback_id=str(query["id"]),
        # Inline keyboards of other clients may carry no data (game buttons): treat as empty, which is invalid.
        callback_data=str(query.get("data") or ""),
        callback_message_id=message.get("message_id"),
        sent_at=message.get("date"),  # of the message that carries the button
    )


def _poll_answer(update_id: int, answer: dict[str, Any]) -> Incoming | None:
    user = answer.get("user")
    if user is None:  # answered on behalf of a chat (anonymous admin): cannot be credited to a person
        return None
    return Incoming(
        update_id=update_id,
        **_user_fields(user),
        chat_id=int(user["id"]),
        poll_answer=PollAnswer(str(answer["poll_id"]), tuple(int(i) for i in answer.get("option_ids", []))),
    )


def _message(update_id: int, message: dict[str, Any], bot_username: str) -> Incoming | None:
    sender = message.get("from")
    if sender is None or (sender.get("is_bot") and not message.get("new_chat_members")):
        return None
    fields: dict[str, Any] = {
        "update_id": update_id,
        **_user_fields(sender),
        **_chat_fields(message["chat"]),
        "message_id": message.get("message_id"),
        "sent_at": message.get("date"),
    }
    replied = message.get("reply_to_message") or {}
    if replied.get("from") and not replied.get("forum_topic_created"):  # in a forum, every message "replies" to it
        fields["reply_to_user_id"] = int(replied["from"]["id"])
    text = message.get("text")
    if text is not None:
        fields["text"] = text
        fields["html"] = entities_to_html(text, message.get("entities") or [])
        command = _command(text, message.get("entities") or [], bot_username)
        if command is not None:
            fields["command"], fields["args"] = command
    if message.get("caption") is not None:
        fields["text"] = message["caption"]
        fields["html"] = entities_to_html(message["caption"], message.get("caption_entities") or [])
    if message.get("photo"):
        # Telegram sends several sizes of one photo, smallest first: the last one is the original.
        fields["photo_file_ids"] = (message["photo"][-1]["file_id"],)
        fields["file_size"] = message["photo"][-1].get("file_size")
    if message.get("document"):
        fields["document_file_id"] = message["document"]["file_id"]
        fields["file_size"] = message["document"].get("file_size")
    if message.get("location"):
        loc = message["location"]
        fields["location"] = Location(float(loc["latitude"]), float(loc["longitude"]))
    if message.get("new_chat_members"):
        fields["new_members"] = tuple(
            Member(int(m["id"]), m.get("first_name", ""), bool(m.get("is_bot"))) for m in message["new_chat_members"]
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
