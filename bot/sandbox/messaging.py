"""Bot API methods that put, change or remove messages: send*, edit*, deleteMessage, stopPoll."""

from __future__ import annotations

from typing import Any, Literal

from bot.sandbox import validate
from bot.sandbox.core import EmulatorCore, MethodTable
from bot.sandbox.errors import NOT_MODIFIED, ApiError, bad_request
from bot.sandbox.files import MAX_PHOTO_BYTES, MAX_UPLOAD_BYTES, image_size
from bot.sandbox.models import Conversation, PollState, SimBot, StoredFile, StoredMessage
from bot.sandbox.params import Params, Upload

TABLE = MethodTable()
method = TABLE

MAX_OPEN_PERIOD = 2_628_000


def _target(core: EmulatorCore, bot: SimBot, p: Params) -> tuple[Conversation, StoredMessage | None]:
    """The chat to send to and the message to reply to, if any."""
    chat = core.chat_for_bot(bot, p.chat_id(), sending=True)
    conv = core.conversation(bot.id, chat)
    reply_id = p.get_int("reply_to_message_id")
    reply_parameters = p.get_json("reply_parameters")
    if isinstance(reply_parameters, dict) and reply_parameters.get("message_id") is not None:
        reply_id = int(reply_parameters["message_id"])
    if reply_id is None:
        return conv, None
    replied = conv.messages.get(reply_id)
    allow_missing = p.get_bool("allow_sending_without_reply") or (
        isinstance(reply_parameters, dict) and bool(reply_parameters.get("allow_sending_without_reply"))
    )
    if replied is None and not allow_missing:
        raise bad_request("message to be replied not found")
    return conv, replied


def _post(
    core: EmulatorCore, bot: SimBot, p: Params, fields: dict[str, Any], poll: PollState | None = None
) -> dict[str, Any]:
    """Validate markup, store the bot's message and return it as Telegram does."""
    conv, replied = _target(core, bot, p)
    inline, keyboard = validate.reply_markup(p)
    if inline is not None:
        fields["reply_markup"] = inline
    stored = core.add_message(
        conv, fields, sender=bot, reply_to=replied, poll_id=poll.id if poll else None, reply_keyboard=keyboard
    )
    if keyboard is not None:
        conv.reply_keyboard = keyboard if "keyboard" in keyboard else None
    if poll is not None:
        poll.chat_id, poll.message_id = conv.chat.id, stored.message_id
    return core.render(stored)


def _with_entities(fields: dict[str, Any], key: str, entities: list[dict[str, Any]]) -> dict[str, Any]:
    if entities:
        fields[key] = entities
    return fields


@method("sendMessage")
async def send_message(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Send a text message."""
    text, entities = validate.message_text(p)
    return _post(core, bot, p, _with_entities({"text": text}, "entities", entities))


def _file(core: EmulatorCore, p: Params, name: str, kind: Literal["photo", "document"]) -> StoredFile:
    """Resolve an uploaded part or an existing file_id into a stored file."""
    given = p.file(name)
    if given is None:
        raise bad_request(f"there is no {name} in the request")
    if isinstance(given, Upload):
        return store_upload(core, given, kind)
    if given.startswith(("http://", "https://")):
        raise bad_request("failed to get HTTP URL content")
    stored = core.files.get(given)
    if stored is None:
        raise bad_request("wrong file identifier/HTTP URL specified")
    if kind == "photo" and stored.kind != "photo":
        raise bad_request("can't use file of type Document as Photo")
    return stored


def store_upload(core: EmulatorCore, upload: Upload, kind: Literal["photo", "document"]) -> StoredFile:
    """Check and store an uploaded file (photos must be real images, as Telegram re-encodes them)."""
    if len(upload.data) > (MAX_PHOTO_BYTES if kind == "photo" else MAX_UPLOAD_BYTES):
        raise bad_request("file is too big")
    if not upload.data:
        raise bad_request("file must be non-empty")
    size = image_size(upload.data) if kind == "photo" else None
    if kind == "photo" and size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    return core.files.add(
        upload.data, kind, file_name=upload.filename, mime_type=upload.content_type, size=size or (0, 0)
    )


def _captioned(p: Params, fields: dict[str, Any]) -> dict[str, Any]:
    text, entities = validate.caption(p)
    if text is not None:
        fields["caption"] = text
    return _with_entities(fields, "caption_entities", entities)


@method("sendPhoto")
async def send_photo(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Send a photo from an upload or an existing file_id."""
    fields = _captioned(p, {})
    stored = _file(core, p, "photo", "photo")
    if p.get_bool("has_spoiler"):
        fields["has_media_spoiler"] = True
    return _post(core, bot, p, {"photo": stored.photo_sizes(), **fields})


@method("sendDocument")
async def send_document(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Send a document from an upload or an existing file_id."""
    fields = _captioned(p, {})
    stored = _file(core, p, "document", "document")
    return _post(core, bot, p, {"document": stored.document(), **fields})


@method("sendLocation")
async def send_location(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Send a map point."""
    latitude, longitude = p.get_float("latitude"), p.get_float("longitude")
    if latitude is None or longitude is None or not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise bad_request("wrong location specified")
    return _post(core, bot, p, {"location": {"latitude": latitude, "longitude": longitude}})


@method("sendPoll")
async def send_poll(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Send a regular or quiz poll; quizzes use correct_option_ids (Bot API 9.6)."""
    question = validate.poll_question(p)
    options = validate.poll_options(p)
    kind = p.get_str("type") or "regular"
    if kind not in ("regular", "quiz"):
        raise bad_request("wrong poll type specified")
    open_period = p.get_int("open_period")
    close_date = p.get_int("close_date")
    if open_period is not None and close_date is not None:
        raise bad_request("can't specify both open_period and close_date")
    if open_period is not None and not 5 <= open_period <= MAX_OPEN_PERIOD:
        raise bad_request("wrong open_period specified")
    now = core.clock.time()
    poll = PollState(
        id=str(5_000_000_000_000 + core.next_id()),
        bot_id=bot.id,
        question=question,
        options=options,
        type="quiz" if kind == "quiz" else "regular",
        is_anonymous=p.get_bool("is_anonymous", default=True),
        allows_multiple_answers=p.get_bool("allows_multiple_answers"),
        allows_revoting=kind != "quiz" and p.get_bool("allows_revoting", default=True),
        correct_option_ids=validate.correct_options(p, len(options)) if kind == "quiz" else None,
        explanation=validate.explanation(p) if kind == "quiz" else None,
        open_period=open_period,
        close_at=now + open_period if open_period is not None else (float(close_date) if close_date else None),
        is_closed=p.get_bool("is_closed"),
    )
    core.polls[poll.id] = poll
    try:
        return _post(core, bot, p, {}, poll)
    except ApiError:
        del core.polls[poll.id]
        raise


def _own_message(
    core: EmulatorCore, bot: SimBot, p: Params, not_found: str, foreign: str
) -> tuple[Conversation, StoredMessage]:
    """The bot's own message addressed by chat_id + message_id (inline messages are not emulated)."""
    if p.has("inline_message_id") and not p.has("chat_id"):
        raise bad_request("MESSAGE_ID_INVALID")
    chat = core.chat_for_bot(bot, p.chat_id(), sending=False)
    conv = core.conversation(bot.id, chat)
    stored = conv.messages.get(p.require_int("message_id", "message identifier is not specified"))
    if stored is None:
        raise bad_request(not_found)
    if stored.sender_bot_id != bot.id:
        raise bad_request(foreign)
    return conv, stored


def _edit(
    core: EmulatorCore,
    bot: SimBot,
    p: Params,
    conv: Conversation,
    stored: StoredMessage,
    changes: dict[str, Any],
) -> dict[str, Any] | bool:
    """Apply an edit; a missing reply_markup removes the inline keyboard, as on Telegram."""
    inline, _ = validate.reply_markup(p)
    changes = {**changes, "reply_markup": inline}
    if all(stored.data.get(key) == value for key, value in changes.items()):
        raise bad_request(NOT_MODIFIED)
    core.update_message(conv, stored, {**changes, "edit_date": int(core.clock.time())})
    return core.render(stored)


@method("editMessageText")
async def edit_message_text(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any] | bool:
    """Replace a message's text (and inline keyboard)."""
    conv, stored = _own_message(core, bot, p, "message to edit not found", "message can't be edited")
    if "text" not in stored.data:
        raise bad_request("there is no text in the message to edit")
    text, entities = validate.message_text(p)
    return _edit(core, bot, p, conv, stored, {"text": text, "entities": entities or None})


@method("editMessageCaption")
async def edit_message_caption(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any] | bool:
    """Replace a media message's caption (and inline keyboard)."""
    conv, stored = _own_message(core, bot, p, "message to edit not found", "message can't be edited")
    if "text" in stored.data or "poll" in stored.data or stored.poll_id:
        raise bad_request("there is no caption in the message to edit")
    text, entities = validate.caption(p)
    return _edit(core, bot, p, conv, stored, {"caption": text, "caption_entities": entities or None})


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any] | bool:
    """Replace or remove a message's inline keyboard."""
    conv, stored = _own_message(core, bot, p, "message to edit not found", "message can't be edited")
    return _edit(core, bot, p, conv, stored, {})


@method("deleteMessage")
async def delete_message(core: EmulatorCore, bot: SimBot, p: Params) -> bool:
    """Delete a message: any in a private chat, only the bot's own in a group (it is not an admin)."""
    chat = core.chat_for_bot(bot, p.chat_id(), sending=False)
    conv = core.conversation(bot.id, chat)
    stored = conv.messages.get(p.require_int("message_id", "message identifier is not specified"))
    if stored is None:
        raise bad_request("message to delete not found")
    if chat.is_group and stored.sender_bot_id != bot.id:
        raise bad_request("message can't be deleted")
    core.remove_message(conv, stored)
    return True


@method("stopPoll")
async def stop_poll(core: EmulatorCore, bot: SimBot, p: Params) -> dict[str, Any]:
    """Close a poll the bot sent; the bot also receives the final poll state as an update."""
    not_found = "message with poll to stop not found"
    conv, stored = _own_message(core, bot, p, not_found, "poll can't be stopped")
    if stored.poll_id is None:
        raise bad_request(not_found)
    poll = core.polls[stored.poll_id]
    now = core.clock.time()
    if poll.closed(now):
        raise bad_request("poll has already been closed")
    inline, _ = validate.reply_markup(p)
    poll.is_closed = True
    core.update_message(conv, stored, {"reply_markup": inline})
    state = poll.to_api(now)
    core.emit(bot.id, "poll", state)
    return state
