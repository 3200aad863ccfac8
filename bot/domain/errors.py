"""Domain errors. Each names a template under ``errors/`` so the user gets a localised explanation."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule was broken; ``template`` explains it to the user, ``context`` fills the template."""

    template = "errors/generic"

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message or self.template)
        self.context: dict[str, Any] = context


class NotFound(DomainError):
    template = "errors/not_found"


class Forbidden(DomainError):
    template = "errors/forbidden"


class GroupLinkedElsewhere(DomainError):
    """The group belongs to another community; only someone who organises both may move it."""

    template = "group/linked_elsewhere"


class NeedsConsent(DomainError):
    template = "errors/needs_registration"


class InvalidInput(DomainError):
    template = "errors/invalid_input"
