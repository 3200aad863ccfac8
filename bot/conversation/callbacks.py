"""Compact, versioned callback data (< 64 bytes) with validation.

Format: ``<version>|<namespace>.<action>|<arg>|<arg>...``. Each registered action declares the type of its
arguments; anything that does not match (forged, stale, from an older version) is rejected with
:class:`InvalidCallback`. Callback data is a hint from the client, never trusted: handlers re-check ownership
against storage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSION = "1"
MAX_BYTES = 64
_SAFE = re.compile(r"^[A-Za-z0-9_\-]{0,32}$")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,11}$")

ArgType = type[int] | type[str]


class InvalidCallback(ValueError):
    """Callback data that this bot did not produce (or no longer understands)."""


@dataclass(frozen=True)
class CallbackData:
    namespace: str
    action: str
    args: tuple[int | str, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}.{self.action}"


class CallbackCodec:
    """Encodes and validates callback data for registered actions."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[ArgType, ...]] = {}

    def register(self, namespace: str, action: str, *arg_types: ArgType) -> None:
        """Declare an action and the types of its arguments."""
        if not (_NAME.match(namespace) and _NAME.match(action)):
            raise ValueError(f"bad callback name {namespace}.{action}")
        self._specs[f"{namespace}.{action}"] = arg_types

    def merge(self, other: CallbackCodec) -> None:
        """Take over the actions another codec registered (a feature router's)."""
        self._specs.update(other._specs)

    def encode(self, namespace: str, action: str, *args: int | str) -> str:
        """Build callback data; raises ValueError on a programming error (never at run time for users)."""
        key = f"{namespace}.{action}"
        spec = self._specs.get(key)
        if spec is None or len(spec) != len(args):
            raise ValueError(f"unregistered callback {key} / {args!r}")
        for arg, kind in zip(args, spec, strict=True):
            if not isinstance(arg, kind) or isinstance(arg, bool) or not _SAFE.match(str(arg)):
                raise ValueError(f"bad callback argument {arg!r} for {key}")
        data = "|".join([VERSION, key, *map(str, args)])
        if len(data.encode()) >= MAX_BYTES:
            raise ValueError(f"callback data too long: {data}")
        return data

    def decode(self, data: str) -> CallbackData:
        """Parse and validate callback data coming from a user."""
        if not data or len(data.encode()) >= MAX_BYTES:
            raise InvalidCallback("size")
        version, _, rest = data.partition("|")
        if version != VERSION:
            raise InvalidCallback("version")
        key, *raw = rest.split("|")
        spec = self._specs.get(key)
        if spec is None or len(spec) != len(raw):
            raise InvalidCallback("unknown")
        args = tuple(self._parse(value, kind) for value, kind in zip(raw, spec, strict=True))
        namespace, action = key.split(".", 1)
        return CallbackData(namespace, action, args)

    @staticmethod
    def _parse(value: str, kind: ArgType) -> int | str:
        if not _SAFE.match(value):
            raise InvalidCallback("argument")
        if kind is int:
            if not re.fullmatch(r"-?[0-9]{1,18}", value):
                raise InvalidCallback("argument")
            return int(value)
        return value
