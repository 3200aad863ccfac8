"""The sandbox's chat history on disk, next to its database, so a restarted sandbox shows the earlier messages.

The emulator keeps chats in memory; the bot's database survives a restart, so without this every chat on the page
would start empty while the bot still remembers everything (and would edit messages the page no longer has). Saved:
the people created on the page and group members, who started or blocked the bot, each chat's newest
``MAX_MESSAGES`` messages with their polls and files, and the counters (message, poll, file and update ids, the
change version) so that new ids never collide with restored ones.

Layout, for ``sicheng-sandbox.db``: ``sicheng-sandbox.chats.json`` and a ``sicheng-sandbox.chats/`` folder with the
photos and documents those messages show. Written (atomically) shortly after every change and at stop; read at start
unless ``--fresh``, which deletes both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
from dataclasses import asdict
from itertools import count
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.sandbox.emulator import Emulator
from bot.sandbox.models import Conversation, PollState, SimChat, SimUser, StoredFile, StoredMessage

log = logging.getLogger(__name__)

FORMAT = 1
MAX_MESSAGES = 300  # per chat: the newest are kept
MAX_FILE_BYTES = 64 * 1024 * 1024  # all kept photos and documents together; the newest are kept
SAVE_DELAY = 0.5  # seconds: changes that come together are written once


def history_path(database_url: str) -> Path | None:
    """Where the history of the sandbox with this database lives; None when it cannot be kept (not a file)."""
    parsed = make_url(database_url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database or parsed.database == ":memory:":
        return None
    db = Path(parsed.database)
    return db.with_name(db.stem + ".chats.json")


class ChatHistory:
    """Saves and restores the emulator's people, chats and messages (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files_dir = path.with_suffix("")  # sicheng-sandbox.chats/
        self.instance = secrets.token_hex(6)  # kept with the history: the page's memory of votes stays valid
        self._saved_version = -1

    def remove(self) -> None:
        """``--fresh``: forget the history."""
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.files_dir, ignore_errors=True)

    # ---- restore -------------------------------------------------------------------------------------------
    def load(self, emu: Emulator) -> int:
        """Restore into a seeded emulator; returns how many messages came back (0 without a readable history)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("sandbox: chat history %s unreadable (%s); chats start empty", self.path, exc)
            return 0
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            log.warning("sandbox: chat history %s has an unknown format; chats start empty", self.path)
            return 0
        try:
            restored = self._restore(emu, data)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            log.warning("sandbox: chat history %s could not be restored (%r); chats start empty", self.path, exc)
            emu.conversations.clear()
            return 0
        self.instance = str(data.get("instance") or self.instance)
        self._saved_version = emu.events.version
        return restored

    def _restore(self, emu: Emulator, data: dict[str, Any]) -> int:
        for user in data["users"]:
            if user["id"] not in emu.users:
                emu.users[user["id"]] = SimUser(**user)
        for group in data["groups"]:
            known = emu.groups.get(group["id"])
            members = [m for m in group["members"] if m in emu.users]
            if known is not None:
                known.members = members
            else:
                emu.groups[group["id"]] = SimChat(
                    id=group["id"],
                    type=group["type"],
                    title=group["title"],
                    members=members,
                    bot_ids={b for b in group["bot_ids"] if b in emu.bots},
                    creator_id=group["creator_id"],
                )
        emu.started.update((u, b) for u, b in data["started"] if u in emu.users and b in emu.bots)
        emu.blocked.update((u, b) for u, b in data["blocked"] if u in emu.users and b in emu.bots)
        for poll in data["polls"]:
            votes = {int(user): chosen for user, chosen in poll.pop("votes").items()}
            emu.polls[poll["id"]] = PollState(**poll, votes=votes)
        for meta in data["files"]:
            path = self.files_dir / meta["file_id"]
            if path.is_file():
                file = StoredFile(**meta, data=path.read_bytes())
                # The file store has no public way to take a file with a given id: this is its one other user.
                emu.files._by_id[file.file_id] = file
                emu.files._by_path[file.file_path] = file
        restored = 0
        for item in data["chats"]:
            if item["bot_id"] and item["bot_id"] not in emu.bots:
                continue
            chat_id = item["chat_id"]
            if (chat_id < 0 and chat_id not in emu.groups) or (chat_id > 0 and chat_id not in emu.users):
                continue
            conv = emu.conversation(item["bot_id"], emu.chat(chat_id))
            conv.next_message_id = max(conv.next_message_id, item["next_message_id"])
            conv.reply_keyboard = item["reply_keyboard"]
            for message in item["messages"]:
                if message["poll_id"] is not None and message["poll_id"] not in emu.polls:
                    continue
                kept = StoredMessage(**message)
                conv.messages[kept.message_id] = kept
                restored += 1
        counters = data["counters"]
        emu.events.version = max(emu.events.version, counters["version"])
        emu._seq = count(max(counters["next_id"], 1))  # poll and callback ids go on from where they were
        emu.files._seq = count(max(counters["next_file"], 1))
        for bot_id, next_update_id in counters["next_update_id"].items():
            if int(bot_id) in emu.queues:
                queue = emu.queues[int(bot_id)]
                queue.next_update_id = max(queue.next_update_id, next_update_id)
        return restored

    # ---- save ----------------------------------------------------------------------------------------------
    def save(self, emu: Emulator) -> None:
        """Write the history now (a temporary file renamed over the old one: a crash leaves one or the other)."""
        chats: list[dict[str, Any]] = []
        poll_ids: set[str] = set()
        file_ids: list[tuple[int, str]] = []
        for (bot_id, chat_id), conv in emu.conversations.items():
            if not conv.messages and conv.reply_keyboard is None:
                continue
            kept = list(conv.messages.values())[-MAX_MESSAGES:]
            chats.append(_chat(bot_id, chat_id, conv, kept))
            for stored in kept:
                if stored.poll_id is not None:
                    poll_ids.add(stored.poll_id)
                file_ids.extend((stored.version, file_id) for file_id in _file_ids(stored.data))
        files = self._save_files(emu, file_ids)
        polls = [asdict(emu.polls[poll_id]) for poll_id in sorted(poll_ids) if poll_id in emu.polls]
        for poll in polls:
            poll["votes"] = {str(user): chosen for user, chosen in poll["votes"].items()}
        data = {
            "format": FORMAT,
            "instance": self.instance,
            "counters": {
                "version": emu.events.version,
                "next_id": _peek(emu._seq),
                "next_file": _peek(emu.files._seq),
                "next_update_id": {str(b): q.next_update_id for b, q in emu.queues.items()},
            },
            "users": [asdict(user) for user in emu.users.values()],
            "groups": [
                {
                    "id": group.id,
                    "type": group.type,
                    "title": group.title,
                    "members": group.members,
                    "bot_ids": sorted(group.bot_ids),
                    "creator_id": group.creator_id,
                }
                for group in emu.groups.values()
            ],
            "started": sorted(emu.started),
            "blocked": sorted(emu.blocked),
            "polls": polls,
            "files": files,
            "chats": chats,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(data, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
        os.replace(temporary, self.path)
        self._saved_version = emu.events.version

    def _save_files(self, emu: Emulator, wanted: list[tuple[int, str]]) -> list[dict[str, Any]]:
        """Write the files the kept messages show (newest first, within MAX_FILE_BYTES); delete the others."""
        metas: list[dict[str, Any]] = []
        total = 0
        seen: set[str] = set()
        for _, file_id in sorted(wanted, reverse=True):
            stored = emu.files.get(file_id)
            if stored is None or file_id in seen or total + len(stored.data) > MAX_FILE_BYTES:
                continue
            seen.add(file_id)
            total += len(stored.data)
            path = self.files_dir / file_id
            if not path.is_file():
                self.files_dir.mkdir(parents=True, exist_ok=True)
                path.write_bytes(stored.data)
            meta = asdict(stored)
            meta.pop("data")
            metas.append(meta)
        if self.files_dir.is_dir():
            for path in self.files_dir.iterdir():
                if path.name not in seen:
                    path.unlink(missing_ok=True)
        return metas

    async def keep(self, emu: Emulator) -> None:
        """Save shortly after every change, until cancelled (the caller saves once more at stop)."""
        while not emu.events.closed:
            await emu.events.wait(self._saved_version, 30)
            if emu.events.version == self._saved_version:
                continue
            await asyncio.sleep(SAVE_DELAY)
            try:
                self.save(emu)
            except OSError as exc:
                log.warning("sandbox: could not save the chat history to %s (%s)", self.path, exc)
                await asyncio.sleep(5)

    def save_quietly(self, emu: Emulator) -> None:
        """The save at stop: a failure is logged, never raised over the real reason the sandbox stopped."""
        with contextlib.suppress(OSError):
            self.save(emu)


def _chat(bot_id: int, chat_id: int, conv: Conversation, kept: list[StoredMessage]) -> dict[str, Any]:
    return {
        "bot_id": bot_id,
        "chat_id": chat_id,
        "next_message_id": conv.next_message_id,
        "reply_keyboard": conv.reply_keyboard,
        "messages": [
            {
                "data": stored.data,
                "version": stored.version,
                "sender_bot_id": stored.sender_bot_id,
                "poll_id": stored.poll_id,
                "reply_keyboard": stored.reply_keyboard,
            }
            for stored in kept
        ],
    }


def _file_ids(message: dict[str, Any]) -> list[str]:
    """The files a message (and the message it quotes) shows."""
    ids = [size["file_id"] for size in message.get("photo") or []]
    if document := message.get("document"):
        ids.append(document["file_id"])
    if quoted := message.get("reply_to_message"):
        ids.extend(_file_ids(quoted))
    return ids


def _peek(counter: count[int]) -> int:
    """The next number of an itertools.count without using it up (its repr is ``count(N)``)."""
    return int(repr(counter).removeprefix("count(").removesuffix(")"))
