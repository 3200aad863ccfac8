"""The conversation core: one place that turns an Incoming into rendered Outgoing actions.

Both channels (aiogram, python-telegram-bot) and the tests call :meth:`Core.handle`, so behaviour is identical
whatever carries the update. Per-user serialisation and the error boundary live here too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from bot.conversation.callbacks import InvalidCallback
from bot.conversation.context import Ctx
from bot.conversation.incoming import Incoming
from bot.conversation.locks import LocalUserLocks, UserLocks
from bot.conversation.render import ActionRenderer
from bot.conversation.replies import Action, AnswerCallback, Button, Outgoing, OutPoll, SendText, keyboard
from bot.conversation.router import Route, Router
from bot.conversation.state import StateStore
from bot.domain.errors import DomainError, Forbidden
from bot.domain.residents import Resident, normalise_locale
from bot.services.container import Services

log = logging.getLogger(__name__)

MAX_TEXT = 4096


class Deferred(Exception):
    """A handler cannot act yet (e.g. a poll answer whose poll id is still being stored): handle the update again
    after ``seconds``. Nothing it did is kept; the inbox keeps the update."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


def _no_savepoint() -> AbstractAsyncContextManager[None]:
    return nullcontext()


class Core:
    def __init__(
        self,
        router: Router,
        services: Services,
        store: StateStore,
        renderer: ActionRenderer,
        locks: UserLocks | None = None,
        settings: dict[str, Any] | None = None,
        savepoint: Callable[[], AbstractAsyncContextManager[None]] = _no_savepoint,
    ) -> None:
        self.router = router
        self.services = services
        self.store = store
        self.renderer = renderer
        self.locks = locks or LocalUserLocks()
        self.settings = settings or {}
        self.savepoint = savepoint

    async def handle(self, incoming: Incoming) -> list[Outgoing]:
        """Handle one update under its sender's lock, in-process (tests, a channel's ``feed``); never raises.

        The inbox calls :meth:`process` instead and keeps a deferred update durably; here a deferral waits.
        """
        for attempt in range(1, 10):
            try:
                async with self.locks.hold(incoming.user_id):
                    return await self.process(incoming)
            except Deferred as wait:
                incoming.extra["attempt"] = str(attempt)
                await asyncio.sleep(wait.seconds)
        return []

    async def process(self, incoming: Incoming) -> list[Outgoing]:
        """Handle one update (the caller holds the sender's lock). Failures become a localised apology and a log
        line; inside an update's transaction, whatever the failed handler changed is rolled back first."""
        locale = normalise_locale(incoming.language_code)
        refused: list[tuple[str, Forbidden]] = []
        try:
            async with self.savepoint():
                ctx = await self._context(incoming)
                locale = ctx.locale
                actions = await self._dispatch(ctx, refused)
            # Outside the handler's savepoint: whatever happens to what the handler did, the refusal is recorded.
            for action, error in refused:
                await self._audit_refusal(incoming, action, error)
            # A handler may switch the language (settings, onboarding): reply in the new one.
            return self.renderer.render(actions, incoming, ctx.locale)
        except Deferred:
            raise
        except Exception:
            log.exception("update %s from user %s failed", incoming.update_id, incoming.user_id)
            return self.renderer.render(_apology(incoming), incoming, locale)

    async def poll_sent(self, poll: OutPoll, poll_id: str, message_id: int) -> None:
        """A quiz poll was posted: let the feature that asked for it (by ``tag``) remember its id."""
        await self.poll_posted(poll.tag, poll.chat_id, poll_id, message_id)

    async def poll_posted(self, tag: str, chat_id: int, poll_id: str, message_id: int) -> None:
        """The outbox dispatcher's listener: same as :meth:`poll_sent`, in the dispatcher's transaction."""
        route = self.router.events.get("poll_sent")
        if route is None or not tag:
            return
        incoming = Incoming(
            update_id=0,
            user_id=0,
            chat_id=chat_id,
            message_id=message_id,
            extra={"tag": tag, "poll_id": poll_id},
        )
        ctx = Ctx(incoming, "zh_Hans", None, None, self.services, self.store, settings=self.settings)
        try:
            await route.handler(ctx)
        except Exception:
            log.exception("poll_sent handler failed for poll %s", poll_id)

    async def _context(self, incoming: Incoming) -> Ctx:
        resident = await self.services.residents.profile(incoming.user_id)
        # Poll answers and join events never continue a dialog: skip the state read on the burst path.
        stateless = incoming.poll_answer is not None or bool(incoming.new_members)
        state = None if stateless else await self.store.get(incoming.user_id, incoming.chat_id)
        locale = _locale(resident, state, incoming)
        return Ctx(incoming, locale, resident, state, self.services, self.store, settings=self.settings)

    async def _dispatch(self, ctx: Ctx, refused: list[tuple[str, Forbidden]]) -> Sequence[Action]:
        """Route and run the handler; a permission refusal (``Forbidden``) not yet audited is added to ``refused``
        for :meth:`process` to record — the one place where refusals decided anywhere below are audited."""
        route: Route | None = None
        try:
            route = self._route(ctx)
            if route is None:
                return []
            refusal = await self._refusal(ctx, route)
            return refusal if refusal is not None else await route.handler(ctx)
        except InvalidCallback:
            log.info("update %s: stale or forged callback %r", ctx.incoming.update_id, ctx.incoming.callback_data)
            return [AnswerCallback("errors/stale_button", alert=True)]
        except DomainError as error:
            if isinstance(error, Forbidden) and not error.already_audited:
                refused.append((_action_name(ctx, route), error))
            return _explain(ctx, error.template, error.context)

    async def _audit_refusal(self, incoming: Incoming, action: str, error: Forbidden) -> None:
        """One audit row for a refusal: who, what they tried (command and arguments, or the button's data) and why."""
        details: dict[str, Any] = {"chat": incoming.chat_id, "refusal": type(error).__name__}
        if incoming.callback_data is not None:
            details["callback"] = incoming.callback_data
        elif incoming.command is not None:
            details["command"] = f"/{incoming.command}"
            if incoming.args:
                details["args"] = incoming.args[:200]
        details.update({key: _plain(value) for key, value in error.context.items()})
        try:
            await self.services.access.refused(incoming.user_id, action, details)
        except Exception:  # the person was told why; a failed audit write is logged, not turned into an apology
            log.exception("update %s: could not audit the refusal of %s", incoming.update_id, action)

    def _route(self, ctx: Ctx) -> Route | None:
        inc, events = ctx.incoming, self.router.events
        if inc.callback_data is not None:
            route, parsed = self.router.decode(inc.callback_data)
            ctx.args = parsed.args
            return route
        if inc.poll_answer is not None:
            return events.get("poll_answer")
        if inc.new_members:
            return events.get("new_members")
        if inc.command is not None:
            return self.router.commands.get(inc.command) or events.get("unknown")
        if inc.text is not None and len(inc.text) > MAX_TEXT:
            return events.get("too_long")
        if ctx.state is not None and ctx.state.name in self.router.steps:
            return self.router.steps[ctx.state.name]
        if not inc.is_private:
            return None
        if inc.photo_file_ids and "photo" in events:  # a photo out of the blue: most likely something to report
            return events["photo"]
        return events.get("text")

    async def _refusal(self, ctx: Ctx, route: Route) -> list[Action] | None:
        inc = ctx.incoming
        if route.private_only and not inc.is_private:
            bot = self.settings.get("bot_username", "")
            payload = f"={route.start_payload}" if route.start_payload else ""
            url = f"https://t.me/{bot}?start{payload}"
            buttons = keyboard([Button("group.continue_private", url=url)]) if bot else ()
            return [SendText("errors/private_only", {"bot": bot}, buttons=buttons)]
        if route.role is not None:
            allowed = await self.services.access.check(inc.user_id, route.role, route.name)
            return None if allowed else _explain(ctx, "errors/forbidden", {"role": route.role.value})
        if not route.needs.met_by(ctx.resident):
            start = self.router.codec.encode("onb", "begin")
            return _explain(ctx, "errors/needs_registration", {}, start_data=start)
        return None


def _action_name(ctx: Ctx, route: Route | None) -> str:
    """What was attempted, as the audit log names it: the command, the button's ``<namespace>.<action>``, the dialog
    step or the event."""
    inc = ctx.incoming
    if inc.callback_data is not None:
        parts = inc.callback_data.split("|")
        return (parts[1] if len(parts) > 1 else inc.callback_data)[:64]
    if inc.command is not None:
        return inc.command[:64]
    return (route.name if route is not None else "")[:64] or "message"


def _plain(value: Any) -> Any:
    """A value the audit log's JSON can hold as it is (numbers, text, booleans); anything else as text."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _locale(resident: Resident | None, state: Any, incoming: Incoming) -> str:
    if resident is not None:
        return resident.locale
    if state is not None and state.data.get("locale"):
        return str(state.data["locale"])
    return normalise_locale(incoming.language_code)


def _explain(ctx: Ctx, template: str, context: dict[str, Any], start_data: str | None = None) -> list[Action]:
    """A refusal or domain error: an alert on a button press, a message otherwise."""
    if ctx.incoming.is_callback:
        return [AnswerCallback(template, context, alert=True)]
    buttons = keyboard([Button("menu.start_registration", data=start_data)]) if start_data else ()
    return [SendText(template, context, buttons=buttons)]


def _apology(incoming: Incoming) -> list[Action]:
    actions: list[Action] = []
    if incoming.is_callback:
        actions.append(AnswerCallback("errors/internal", alert=True))
    if incoming.is_private or incoming.command:
        actions.append(SendText("errors/internal", {"update_id": incoming.update_id}))
    return actions
