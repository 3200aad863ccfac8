"""Domain errors. Each names a template under ``errors/`` so the user gets a localised explanation."""

from __future__ import annotations

from typing import Any, Self


class DomainError(Exception):
    """A rule was broken; ``template`` explains it to the user, ``context`` fills the template."""

    template = "errors/generic"

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message or self.template)
        self.context: dict[str, Any] = context


class NotFound(DomainError):
    template = "errors/not_found"


class Forbidden(DomainError):
    """A permission refusal: the person may not do this (here, in this community, to this thing).

    Every refusal is written to the audit log exactly once. The conversation core writes it for each ``Forbidden``
    (subclasses included) that reaches it; code that already wrote a refusal row of its own (with details only it
    knows) marks the error with :meth:`audited` so that the core does not write a second one.
    """

    template = "errors/forbidden"

    def __init__(self, message: str = "", **context: Any) -> None:
        super().__init__(message, **context)
        self.already_audited = False

    def audited(self) -> Self:
        """Mark the refusal as written to the audit log already; returns the error, to ``raise ... .audited()``."""
        self.already_audited = True
        return self


class GroupLinkedElsewhere(Forbidden):
    """The group belongs to another community; only someone who organises both may move it."""

    template = "group/linked_elsewhere"


class NeedsConsent(DomainError):
    template = "errors/needs_registration"


class InvalidInput(DomainError):
    template = "errors/invalid_input"
