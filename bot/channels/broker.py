"""Several workers: stored updates are announced on a Redis Stream and taken by a consumer group.

Why Redis Streams (and not RabbitMQ): Redis is already required for the shared send pace and the per-user locks, a
consumer group gives exactly what is needed — each announcement delivered to one worker, kept in the group's
pending list until that worker acknowledges it (``XACK``), and taken over by another worker when the first one dies
(``XAUTOCLAIM`` after ``min_idle``) — and one fewer service means one fewer thing to run and watch.

The stream is only a *doorbell*: the update itself is in the ``inbox_update`` table (PostgreSQL), stored before
Telegram was told it arrived. An announcement carries the row's id and its sender; the worker handles the sender's
pending rows oldest first under the sender's Redis lock (:mod:`bot.channels.redis_locks`), and the handling
transaction marks a row done only if it was still pending. So:

* an announcement delivered twice (reclaimed from a slow worker, or re-announced by the sweep) costs a lookup;
* an announcement lost (Redis flushed, or Redis down when the update was stored) is made again by the leader's sweep
  (rows pending for 20 s while nothing waits undelivered in the stream): nothing durable lives only in Redis;
* one person's updates are handled in order and one at a time whichever worker gets which announcement.

Keys are ``<prefix>:{<sha256(token)[:16]>}:updates`` (the token never appears; one stream per bot).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bot.channels.redis_pace import key_base

log = logging.getLogger(__name__)

GROUP = "workers"
MAX_LEN = 200_000  # approximate cap of the stream (acknowledged announcements are not needed again)


@dataclass(frozen=True)
class Announcement:
    """One stream entry: inbox row ``row`` from ``user`` (None: an update without a sender)."""

    entry: str
    row: int
    user: int | None


def stream_key(token: str, prefix: str = "sicheng") -> str:
    return f"{key_base(token, prefix)}:updates"


class UpdateBroker:
    """Announce stored updates and take them as one consumer of the workers' group."""

    def __init__(self, redis: Redis, token: str, consumer: str, *, prefix: str = "sicheng") -> None:
        self.redis = redis
        self.stream = stream_key(token, prefix)
        self.consumer = consumer

    async def ensure_group(self) -> None:
        """Create the stream and the group if missing; a new group starts at the stream's beginning (id 0), so
        nothing announced before the first worker ever started is skipped."""
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise

    async def publish(self, items: Sequence[tuple[int, int | None]]) -> None:
        """Announce inbox rows (id, sender) in order, in one round trip."""
        if not items:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for row, user in items:
                fields: dict[Any, Any] = {"row": row, "user": "" if user is None else user}
                pipe.xadd(self.stream, fields, maxlen=MAX_LEN, approximate=True)
            await pipe.execute()

    async def read(self, count: int, block_ms: int) -> list[Announcement]:
        """New announcements for this consumer (waits at most ``block_ms`` when there are none)."""
        if count <= 0:
            return []
        try:
            reply = await self.redis.xreadgroup(GROUP, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.ensure_group()  # the stream was flushed: the sweep re-announces what is pending
            return []
        streams: list[Any] = list(reply or [])  # [[stream, [(entry, fields), ...]]]
        return [parsed for _, entries in streams for parsed in _parse(entries)]

    async def reclaim(self, min_idle_ms: int, count: int) -> list[Announcement]:
        """Announcements another consumer took but did not acknowledge for ``min_idle_ms`` (it died or hangs)."""
        try:
            reply = await self.redis.xautoclaim(
                self.stream, GROUP, self.consumer, min_idle_time=min_idle_ms, start_id="0-0", count=count
            )
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.ensure_group()
            return []
        return _parse(reply[1] if len(reply) > 1 else [])

    async def touch(self, entries: Sequence[str], min_idle_ms: int) -> None:
        """Reset the idle time of announcements this consumer is still working on (``XCLAIM … JUSTID``), so a live
        worker's slow or queued announcements are never mistaken for a dead worker's. An entry idle less than
        ``min_idle_ms`` is left alone: another worker may have just taken it over from this one (it stalled)."""
        if entries:
            await self.redis.xclaim(self.stream, GROUP, self.consumer, min_idle_ms, list(entries), justid=True)

    async def ack(self, entries: Sequence[str]) -> None:
        if entries:
            await self.redis.xack(self.stream, GROUP, *entries)

    async def backlog(self) -> int:
        """Announcements not yet delivered to any worker (the group's lag) plus those delivered and not acknowledged."""
        try:
            groups = await self.redis.xinfo_groups(self.stream)
        except ResponseError:
            return 0
        for group in groups:
            name = group.get("name")
            if name in (GROUP, GROUP.encode()):
                lag = group.get("lag")
                return int(lag or 0) + int(group.get("pending") or 0)
        return 0


def _parse(entries: Sequence[Any]) -> list[Announcement]:
    parsed: list[Announcement] = []
    for entry_id, fields in entries:
        if not fields:  # trimmed away while pending: the sweep re-announces the row if it is still pending
            continue
        entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        values = {
            (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
            for k, v in fields.items()
        }
        try:
            row = int(values["row"])
            user = int(values["user"]) if values.get("user") else None
        except (KeyError, ValueError):
            log.warning("broker: unreadable announcement %s ignored", entry)
            row, user = 0, None  # row 0: acknowledged without doing anything
        parsed.append(Announcement(entry, row, user))
    return parsed
