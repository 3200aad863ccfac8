"""The local Telegram: serves Bot API calls and plays the residents (users, groups, taps, votes)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.sandbox.core import DEFAULT_TOKEN
from bot.sandbox.dispatch import dispatch
from bot.sandbox.entities import command_entities
from bot.sandbox.errors import ApiError, SandboxError
from bot.sandbox.messaging import store_upload
from bot.sandbox.models import CallbackState, Conversation, PollState, SimBot, SimChat, SimUser, StoredMessage
from bot.sandbox.params import Params, Upload
from bot.sandbox.views import EmulatorViews

__all__ = ["DEFAULT_TOKEN", "Emulator"]

_FIRST_USER_ID = 1_000_001
_FIRST_GROUP_ID = -1_001_000_000_001


class Emulator(EmulatorViews):
    """Python-level API: the HTTP server and in-process tests call the same methods."""

    async def call_api(
        self,
        token: str,
        method: str,
        params: Mapping[str, Any] | None = None,
        uploads: Mapping[str, Upload] | None = None,
    ) -> Any:
        """Call a Bot API method as a bot would; raises ApiError with Telegram's error."""
        return await dispatch(self, token, method, Params(params, uploads))

    # --- residents and groups -------------------------------------------------------------------------------
    def create_user(
        self,
        first_name: str = "居民",
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "zh-hans",
        user_id: int | None = None,
    ) -> SimUser:
        """Create a simulated user; ids are assigned from 1000001 unless fixed."""
        if user_id is None:
            user_id = max([_FIRST_USER_ID - 1, *self.users]) + 1
        elif user_id <= 0 or user_id in self.users or user_id in self.bots:
            raise SandboxError(f"user id {user_id} is taken or invalid")
        user = SimUser(user_id, first_name, last_name, username, language_code)
        self.users[user_id] = user
        return user

    def list_users(self) -> list[SimUser]:
        """All simulated users."""
        return list(self.users.values())

    def create_group(
        self,
        title: str,
        members: Iterable[int] = (),
        *,
        chat_id: int | None = None,
        supergroup: bool = True,
        bot_ids: Iterable[int] | None = None,
    ) -> SimChat:
        """Create a group with the bot(s) in it; the first member is its creator and adds the bots."""
        member_ids = [self.user(user_id).id for user_id in members]
        if chat_id is None:
            chat_id = min([_FIRST_GROUP_ID + 1, *self.groups]) - 1
        elif chat_id >= 0 or chat_id in self.groups:
            raise SandboxError(f"group id {chat_id} is taken or invalid (groups have negative ids)")
        bots = [self.bot(bot_id) for bot_id in bot_ids] if bot_ids is not None else [self.default_bot]
        group = SimChat(
            id=chat_id,
            type="supergroup" if supergroup else "group",
            title=title,
            members=member_ids,
            bot_ids={bot.id for bot in bots},
            creator_id=member_ids[0] if member_ids else None,
        )
        self.groups[chat_id] = group
        if member_ids:
            for bot in bots:
                self._member_update(bot, group, self.users[member_ids[0]], "left", "member")
        return group

    def list_chats(self) -> list[dict[str, Any]]:
        """Groups and the private chats that have messages."""
        chats = [group.to_api() for group in self.groups.values()]
        private = {conv.chat.id for conv in self.conversations.values() if not conv.chat.is_group}
        return chats + [self.private_chat(self.users[user_id]).to_api() for user_id in sorted(private)]

    def add_member(self, chat_id: int, user_id: int) -> dict[str, Any]:
        """Add a user to a group; the bots see a new_chat_members service message."""
        group, user = self._group(chat_id), self.user(user_id)
        if user.id in group.members:
            raise SandboxError(f"user {user.id} is already in chat {chat_id}")
        group.members.append(user.id)
        conv = self.conversation(0, group)
        return self._user_post(conv, user, {"new_chat_members": [user.to_api()]}, None)

    def block(self, user_id: int, bot_id: int | None = None) -> None:
        """The user blocks the bot: sends fail with 403 and the bot gets my_chat_member (kicked)."""
        self._set_blocked(self.user(user_id), self.bot(bot_id), True)

    def unblock(self, user_id: int, bot_id: int | None = None) -> None:
        """The user restarts the bot: my_chat_member (member)."""
        self._set_blocked(self.user(user_id), self.bot(bot_id), False)

    # --- what users do --------------------------------------------------------------------------------------
    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
        bot_id: int | None = None,
    ) -> dict[str, Any]:
        """The user sends text; /commands get bot_command entities, so "/start c1_b2" works."""
        if not text.strip():
            raise SandboxError("text is empty")
        user = self.user(user_id)
        conv = self._user_conversation(user, chat_id, bot_id)
        fields: dict[str, Any] = {"text": text}
        if entities := command_entities(text):
            fields["entities"] = entities
        return self._user_post(conv, user, fields, reply_to_message_id)

    def send_command(self, user_id: int, command: str, args: str = "", **kwargs: Any) -> dict[str, Any]:
        """Shorthand for send_text(user_id, "/command args")."""
        text = "/" + command.lstrip("/") + (f" {args}" if args else "")
        return self.send_text(user_id, text, **kwargs)

    def send_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        filename: str = "photo.jpg",
        content_type: str | None = None,
        caption: str | None = None,
        chat_id: int | None = None,
        bot_id: int | None = None,
    ) -> dict[str, Any]:
        """The user uploads a photo; the bot sees a `photo` array whose file_id works with getFile."""
        user = self.user(user_id)
        conv = self._user_conversation(user, chat_id, bot_id)
        try:
            stored = store_upload(self, Upload(filename, content_type, data), "photo")
        except ApiError as exc:
            raise SandboxError(exc.description) from None
        fields: dict[str, Any] = {"photo": stored.photo_sizes()}
        if caption:
            fields["caption"] = caption
            if entities := command_entities(caption):
                fields["caption_entities"] = entities
        return self._user_post(conv, user, fields, None)

    def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        bot_id: int | None = None,
    ) -> dict[str, Any]:
        """The user shares a location (e.g. through a request_location keyboard button)."""
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise SandboxError("latitude or longitude out of range")
        user = self.user(user_id)
        conv = self._user_conversation(user, chat_id, bot_id)
        fields = {"location": {"latitude": float(latitude), "longitude": float(longitude)}}
        return self._user_post(conv, user, fields, None)

    def press_button(
        self,
        user_id: int,
        chat_id: int,
        message_id: int,
        *,
        data: str | None = None,
        text: str | None = None,
        bot_id: int | None = None,
    ) -> str:
        """Tap an inline button (found by callback_data or by label) that really is on the message."""
        user = self.user(user_id)
        conv = self._visible_conversation(user, chat_id, bot_id)
        stored = self._message(conv, message_id)
        rows = (stored.data.get("reply_markup") or {}).get("inline_keyboard", [])
        button = next(
            (
                b
                for row in rows
                for b in row
                if (data is not None and b.get("callback_data") == data) or (text is not None and b.get("text") == text)
            ),
            None,
        )
        if button is None or stored.sender_bot_id is None:
            raise SandboxError(f"message {message_id} has no such button", 404)
        if "callback_data" not in button:
            raise SandboxError("that button has no callback_data (it opens a URL or similar)")
        return self._callback(user, conv, stored.sender_bot_id, button["callback_data"], stored)

    def press_raw(
        self,
        user_id: int,
        data: str,
        *,
        chat_id: int | None = None,
        message_id: int | None = None,
        bot_id: int | None = None,
    ) -> str:
        """Forge a callback_query with any data (tests of tampered payloads); no button check."""
        user = self.user(user_id)
        bot = self.bot(bot_id)
        conv = self.conversation(bot.id, self.chat(chat_id if chat_id is not None else user.id))
        stored = self._message(conv, message_id) if message_id is not None else None
        return self._callback(user, conv, bot.id, data, stored)

    def callback_answer(self, callback_query_id: str) -> dict[str, Any]:
        """What the bot answered to a button press (answered=False until it does)."""
        query = self.callbacks.get(callback_query_id)
        if query is None:
            raise SandboxError(f"no callback query {callback_query_id}", 404)
        return {"callback_query_id": query.id, "answered": query.answered, **query.answer}

    def answer_poll(self, user_id: int, poll_id: str, option_ids: Sequence[int]) -> dict[str, Any]:
        """Vote; non-anonymous polls send poll_answer, and the sending bot also gets the new poll state."""
        user = self.user(user_id)
        poll = self.polls.get(poll_id)
        if poll is None:
            raise SandboxError(f"no poll {poll_id}", 404)
        chat = self.chat(poll.chat_id)
        if (chat.is_group and user.id not in chat.members) or (not chat.is_group and chat.id != user.id):
            raise SandboxError("the user cannot see this poll", 403)
        now = self.clock.time()
        ids = [int(i) for i in option_ids]
        self._check_vote(poll, now, ids, poll.votes.get(user.id))
        if ids:
            poll.votes[user.id] = sorted(ids)
        else:
            poll.votes.pop(user.id, None)
        conv = self.conversation(poll.bot_id, chat)
        if poll.message_id in conv.messages:
            self.update_message(conv, conv.messages[poll.message_id], {})
        answer = {
            "poll_id": poll.id,
            "user": user.to_api(),
            "option_ids": sorted(ids),
            "option_persistent_ids": [poll.persistent_id(i) for i in sorted(ids)],
        }
        if not poll.is_anonymous:
            self.emit(poll.bot_id, "poll_answer", answer)
        if "poll" in self.queues[poll.bot_id].allowed:  # the state counts every vote: built only if asked for
            self.emit(poll.bot_id, "poll", poll.to_api(now))
        return answer

    @staticmethod
    def _check_vote(poll: PollState, now: float, ids: list[int], previous: list[int] | None) -> None:
        """Refuse what a Telegram client would not let a user do."""
        if poll.closed(now):
            raise SandboxError("the poll is closed")
        if previous and not poll.allows_revoting:
            raise SandboxError("this poll does not allow changing the answer")
        if not ids and not previous:
            raise SandboxError("choose at least one option")
        if len(ids) > 1 and not poll.allows_multiple_answers:
            raise SandboxError("this poll allows one answer only")
        if len(set(ids)) != len(ids) or any(not 0 <= i < len(poll.options) for i in ids):
            raise SandboxError("no such option")

    # --- helpers --------------------------------------------------------------------------------------------
    def _group(self, chat_id: int) -> SimChat:
        if chat_id not in self.groups:
            raise SandboxError(f"no group {chat_id}", 404)
        return self.groups[chat_id]

    def _message(self, conv: Conversation, message_id: int) -> StoredMessage:
        if message_id not in conv.messages:
            raise SandboxError(f"no message {message_id} in chat {conv.chat.id}", 404)
        return conv.messages[message_id]

    def _visible_conversation(self, user: SimUser, chat_id: int, bot_id: int | None) -> Conversation:
        """A chat the user is in, without side effects."""
        if chat_id >= 0:
            if chat_id != user.id:
                raise SandboxError("a user can only act in their own private chat", 403)
            return self.conversation(self.bot(bot_id).id, self.private_chat(user))
        group = self._group(chat_id)
        if user.id not in group.members:
            raise SandboxError(f"user {user.id} is not a member of chat {chat_id}", 403)
        return self.conversation(0, group)

    def _user_conversation(self, user: SimUser, chat_id: int | None, bot_id: int | None) -> Conversation:
        """The chat a user writes in; writing to a bot starts it (and un-blocks it, like "Restart")."""
        conv = self._visible_conversation(user, user.id if chat_id is None else chat_id, bot_id)
        if not conv.chat.is_group:
            bot = self.bot(bot_id)
            self._set_blocked(user, bot, False)
            self.started.add((user.id, bot.id))
        return conv

    def _user_post(
        self, conv: Conversation, user: SimUser, fields: dict[str, Any], reply_to_message_id: int | None
    ) -> dict[str, Any]:
        replied = self._message(conv, reply_to_message_id) if reply_to_message_id is not None else None
        stored = self.add_message(conv, fields, sender=user, reply_to=replied)
        if conv.reply_keyboard and conv.reply_keyboard.get("one_time_keyboard"):
            conv.reply_keyboard = None
        message = self.render(stored)
        bot_ids = sorted(conv.chat.bot_ids) if conv.chat.is_group else [conv.bot_id]
        for bot_id in bot_ids:
            if self.bot_sees(self.bots[bot_id], conv.chat, message):
                self.emit(bot_id, "message", message)
        return message

    def _callback(self, user: SimUser, conv: Conversation, bot_id: int, data: str, stored: StoredMessage | None) -> str:
        query_id = str(4_000_000_000_000_000 + self.next_id())
        payload: dict[str, Any] = {
            "id": query_id,
            "from": user.to_api(),
            "chat_instance": self.chat_instance(bot_id, conv.chat.id),
            "data": data,
        }
        if stored is not None:
            payload["message"] = self.render(stored)
        self.callbacks[query_id] = CallbackState(query_id, bot_id, user.id, data, chat_id=conv.chat.id)
        self.emit(bot_id, "callback_query", payload)
        return query_id

    def _set_blocked(self, user: SimUser, bot: SimBot, blocked: bool) -> None:
        key = (user.id, bot.id)
        if (key in self.blocked) == blocked:
            return
        if blocked:
            self.blocked.add(key)
        else:
            self.blocked.discard(key)
        old, new = ("member", "kicked") if blocked else ("kicked", "member")
        self._member_update(bot, self.private_chat(user), user, old, new)

    def _member_update(self, bot: SimBot, chat: SimChat, actor: SimUser, old: str, new: str) -> None:
        def member(status: str) -> dict[str, Any]:
            extra = {"until_date": 0} if status == "kicked" else {}
            return {"status": status, "user": bot.to_api(), **extra}

        payload = {
            "chat": chat.to_api(),
            "from": actor.to_api(),
            "date": int(self.clock.time()),
            "old_chat_member": member(old),
            "new_chat_member": member(new),
        }
        self.emit(bot.id, "my_chat_member", payload)
