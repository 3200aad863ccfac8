"""Typed references to bot actions (inline buttons) that code outside a feature's router may offer.

A notice that a service writes to the outbox (e.g. "take this report") carries buttons for actions that a
handler module owns. Services must not import handlers, and an action spelled as a string elsewhere breaks
silently when a router is renamed. So each such action is declared once, as an :class:`ActionRef`, next to the
feature's services; its router binds its handler to that reference (``Router.action``), and the app refuses to
start when a declared reference has no handler (``Router.check_refs``).
"""

from __future__ import annotations

from dataclasses import dataclass

_DECLARED: dict[str, ActionRef] = {}

ArgKind = type[int] | type[str]


@dataclass(frozen=True)
class ActionRef:
    namespace: str
    action: str
    arg_types: tuple[ArgKind, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.action}"

    def check(self, args: tuple[int | str, ...]) -> None:
        """A programming error (wrong arity or type) is caught where the button is made, not when it is sent."""
        if len(args) != len(self.arg_types) or not all(
            isinstance(a, t) and not isinstance(a, bool) for a, t in zip(args, self.arg_types, strict=True)
        ):
            raise TypeError(f"{self.key} takes {self.arg_types}, got {args!r}")


def declare(namespace: str, action: str, *arg_types: ArgKind) -> ActionRef:
    """Declare an action that others may reference (once per key)."""
    ref = ActionRef(namespace, action, tuple(arg_types))
    if _DECLARED.setdefault(ref.key, ref) != ref:
        raise ValueError(f"action {ref.key} declared twice with different arguments")
    return ref


def declared() -> dict[str, ActionRef]:
    """Every declared reference (the app checks each has a handler)."""
    return dict(_DECLARED)
