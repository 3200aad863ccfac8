"""Routes an Incoming to a handler: commands, callback actions, state steps and events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from bot.conversation.callbacks import ArgType, CallbackCodec, CallbackData
from bot.domain.actions import ActionRef, declared
from bot.domain.residents import Resident
from bot.domain.roles import Role

if TYPE_CHECKING:
    from bot.conversation.context import Ctx
    from bot.conversation.replies import Action

Handler = Callable[["Ctx"], Awaitable[Sequence["Action"]]]


class Needs(Enum):
    """What the sender must have before a handler runs; the core answers politely otherwise."""

    NOTHING = "nothing"
    CONSENT = "consent"
    REGISTRATION = "registration"  # consent + community

    def met_by(self, resident: Resident | None) -> bool:
        """Whether ``resident`` (None: never seen) may use something that needs this."""
        if self is Needs.NOTHING:
            return True
        if resident is None or not resident.has_consent:
            return False
        return self is Needs.CONSENT or resident.is_registered


@dataclass(frozen=True)
class Route:
    handler: Handler
    needs: Needs = Needs.NOTHING
    role: Role | None = None
    private_only: bool = False
    name: str = ""
    start_payload: str = ""  # private_only, sent in a group: the /start payload of the "open private chat" button


@dataclass
class Router:
    """A feature's routes under one callback namespace; the app includes every feature router in a root."""

    namespace: str
    codec: CallbackCodec = field(default_factory=CallbackCodec)
    commands: dict[str, Route] = field(default_factory=dict)
    callbacks: dict[str, Route] = field(default_factory=dict)
    steps: dict[str, Route] = field(default_factory=dict)
    events: dict[str, Route] = field(default_factory=dict)
    menu_commands: list[str] = field(default_factory=list)

    def command(
        self,
        name: str,
        *,
        needs: Needs = Needs.NOTHING,
        role: Role | None = None,
        private_only: bool = False,
        in_menu: bool = False,
        start_payload: str = "",
    ) -> Callable[[Handler], Handler]:
        """Register ``/name``; ``in_menu`` adds it to the commands shown by Telegram (setMyCommands).

        A ``private_only`` command sent in a group is answered with a button opening the private chat, whose
        /start carries ``start_payload`` (empty: a plain /start)."""

        def register(handler: Handler) -> Handler:
            self.commands[name] = Route(handler, needs, role, private_only, name, start_payload)
            if in_menu:
                self.menu_commands.append(name)
            return handler

        return register

    def callback(
        self, action: str, *arg_types: ArgType, needs: Needs = Needs.NOTHING, role: Role | None = None
    ) -> Callable[[Handler], Handler]:
        """Register an inline-button action ``<namespace>.<action>`` with typed arguments."""

        def register(handler: Handler) -> Handler:
            self.codec.register(self.namespace, action, *arg_types)
            self.callbacks[f"{self.namespace}.{action}"] = Route(handler, needs, role, False, action)
            return handler

        return register

    def action(
        self, ref: ActionRef, *, needs: Needs = Needs.NOTHING, role: Role | None = None
    ) -> Callable[[Handler], Handler]:
        """Bind the handler of a declared action reference (buttons that services put on notices)."""
        if ref.namespace != self.namespace:
            raise ValueError(f"{ref.key} does not belong to router {self.namespace}")
        return self.callback(ref.action, *ref.arg_types, needs=needs, role=role)

    def check_refs(self) -> None:
        """Every declared action reference has a handler (the app refuses to start otherwise)."""
        missing = sorted(key for key in declared() if key not in self.callbacks)
        if missing:
            raise LookupError(f"declared actions without a handler: {missing}")

    def encode_ref(self, ref: ActionRef, *args: int | str) -> str:
        """Callback data for a declared action reference."""
        ref.check(tuple(args))
        return self.codec.encode(ref.namespace, ref.action, *args)

    def step(self, state: str, *, needs: Needs = Needs.NOTHING) -> Callable[[Handler], Handler]:
        """Register the handler for free input (text, photo, location) while in dialog ``state``."""

        def register(handler: Handler) -> Handler:
            self.steps[state] = Route(handler, needs, None, False, state)
            return handler

        return register

    def on(self, event: str, *, needs: Needs = Needs.NOTHING) -> Callable[[Handler], Handler]:
        """Register an event handler: ``new_members``, ``poll_answer``, ``text`` (fallback), ``photo`` (a photo in the
        private chat outside any dialog), ``unknown``."""

        def register(handler: Handler) -> Handler:
            self.events[event] = Route(handler, needs=needs, name=event)
            return handler

        return register

    def data(self, action: str, *args: int | str) -> str:
        """Callback data for one of this router's actions."""
        return self.codec.encode(self.namespace, action, *args)

    def include(self, *children: Router) -> Router:
        """Merge feature routers into this one; a duplicate command or state is a programming error."""
        for child in children:
            for mine, theirs in (
                (self.commands, child.commands),
                (self.callbacks, child.callbacks),
                (self.steps, child.steps),
                (self.events, child.events),
            ):
                clash = set(mine) & set(theirs)
                if clash:
                    raise ValueError(f"routes registered twice: {sorted(clash)}")
                mine.update(theirs)
            self.codec.merge(child.codec)
            self.menu_commands.extend(child.menu_commands)
        return self

    def decode(self, data: str) -> tuple[Route, CallbackData]:
        """Validate callback data and find its route (raises InvalidCallback)."""
        parsed = self.codec.decode(data)
        return self.callbacks[parsed.key], parsed
