"""Per-bot update queues: getUpdates long polling with confirm-by-offset, or push to a webhook."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from bot.sandbox.errors import ApiError
from bot.sandbox.models import DEFAULT_ALLOWED

log = logging.getLogger(__name__)

CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)


class WebhookPoster(Protocol):
    """Sends one update to a webhook URL and returns (HTTP status, reason)."""

    async def __call__(self, url: str, update: dict[str, Any], secret_token: str | None) -> tuple[int, str]: ...


class UpdateQueue:
    """Updates not yet confirmed by the bot, oldest first."""

    def __init__(self) -> None:
        self.items: deque[dict[str, Any]] = deque()
        self.next_update_id = 1
        self.allowed: frozenset[str] = DEFAULT_ALLOWED
        self.closed = False
        self._wakeup = asyncio.Event()
        self._generation = 0

    def push(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Queue an update unless the bot's allowed_updates exclude its type."""
        if kind not in self.allowed:
            return None
        update = {"update_id": self.next_update_id, kind: payload}
        self.next_update_id += 1
        self.items.append(update)
        self._wake()
        return update

    def confirm(self, offset: int) -> None:
        """Forget updates below offset; a negative offset keeps only the last -offset updates."""
        if offset < 0:
            while len(self.items) > -offset:
                self.items.popleft()
            return
        while self.items and self.items[0]["update_id"] < offset:
            self.items.popleft()

    def drop_all(self) -> None:
        """Forget every pending update (drop_pending_updates)."""
        self.items.clear()

    def close(self) -> None:
        """Release every waiter; used on shutdown."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Each waiter holds the event it started with; replacing it makes set() a one-shot broadcast.
        event, self._wakeup = self._wakeup, asyncio.Event()
        event.set()

    async def wait(self, seconds: float | None) -> bool:
        """Wait until something changes (at most `seconds`, None: no limit); False on timeout."""
        event = self._wakeup
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def poll(self, offset: int | None, limit: int, wait_seconds: float) -> list[dict[str, Any]]:
        """getUpdates: confirm, then return pending updates, waiting up to wait_seconds for the first one."""
        self._generation += 1
        generation = self._generation
        self._wake()  # an older long poll of the same bot ends with 409, as on Telegram
        if offset is not None:
            self.confirm(offset)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while not self.items and not self.closed:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await self.wait(remaining):
                break
            if generation != self._generation:
                raise ApiError(409, CONFLICT_OTHER_POLL)
        return list(islice(self.items, limit))


@dataclass
class WebhookState:
    """A bot's webhook and its delivery task."""

    url: str
    secret_token: str | None = None
    max_connections: int = 40
    allowed_updates: list[str] | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def info(self, pending: int) -> dict[str, Any]:
        """getWebhookInfo result."""
        data: dict[str, Any] = {
            "url": self.url,
            "has_custom_certificate": False,
            "pending_update_count": pending,
            "max_connections": self.max_connections,
        }
        if self.allowed_updates is not None:
            data["allowed_updates"] = self.allowed_updates
        if self.last_error_date is not None:
            data["last_error_date"] = self.last_error_date
            data["last_error_message"] = self.last_error_message
        return data


async def deliver_webhook(
    queue: UpdateQueue,
    hook: WebhookState,
    poster: WebhookPoster,
    *,
    retries: int,
    backoff: float,
    now: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Post pending updates one by one, oldest first; retry non-2xx answers, then give up on that update."""
    while not queue.closed:
        if not queue.items:
            await queue.wait(None)
            continue
        update = queue.items[0]
        error = None
        for attempt in range(max(1, retries)):
            error = await _post_once(poster, hook, update)
            if error is None:
                break
            await sleep(backoff * (attempt + 1))
        if error is not None:
            hook.last_error_date = int(now())
            hook.last_error_message = error
            log.info("webhook gave up on update %s: %s", update["update_id"], error)
        if queue.items and queue.items[0] is update:
            queue.items.popleft()


async def _post_once(poster: WebhookPoster, hook: WebhookState, update: dict[str, Any]) -> str | None:
    try:
        status, reason = await poster(hook.url, update, hook.secret_token)
    except (OSError, TimeoutError) as exc:
        return f"Connection failed: {exc.__class__.__name__}"
    if 200 <= status < 300:
        return None
    return f"Wrong response from the webhook: {status} {reason}"
