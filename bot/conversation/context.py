"""What a handler receives: the update, the sender, their dialog state and the services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.conversation.incoming import Incoming
from bot.conversation.state import DEFAULT_TTL, DialogState, StateStore
from bot.domain.residents import Resident
from bot.services.container import Services


@dataclass
class Ctx:
    incoming: Incoming
    locale: str
    resident: Resident | None
    state: DialogState | None
    services: Services
    store: StateStore
    args: tuple[int | str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def user_id(self) -> int:
        return self.incoming.user_id

    @property
    def chat_id(self) -> int:
        return self.incoming.chat_id

    @property
    def data(self) -> dict[str, Any]:
        """The current dialog state's data (empty outside a dialog)."""
        return dict(self.state.data) if self.state else {}

    async def set_state(self, name: str, *, ttl: int = DEFAULT_TTL, **data: Any) -> None:
        """Enter (or update) a dialog step; data must be JSON-serialisable."""
        self.state = DialogState(name, data)
        await self.store.set(self.user_id, self.chat_id, self.state, ttl)

    async def clear_state(self) -> None:
        self.state = None
        await self.store.clear(self.user_id, self.chat_id)
