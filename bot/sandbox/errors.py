"""Errors in Telegram's own shapes (Bot API side) and in the sandbox's user-side API."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A Bot API failure, rendered exactly as Telegram renders it."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after
        # For 429s: which limit fired ("bot", "chat", "group", "fault") and the window's end in real seconds.
        self.scope: str | None = None
        self.until: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the response body Telegram would send."""
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(detail: str) -> ApiError:
    """Return a 400 error with Telegram's prefix."""
    return ApiError(400, f"Bad Request: {detail}")


def forbidden(detail: str) -> ApiError:
    """Return a 403 error with Telegram's prefix."""
    return ApiError(403, f"Forbidden: {detail}")


def too_many_requests(retry_after: int) -> ApiError:
    """Return a 429 error carrying retry_after."""
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


CHAT_NOT_FOUND = "chat not found"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)


class DropConnection(Exception):
    """Raised after an injected hang: the server closes the connection without answering."""


class SandboxError(Exception):
    """A user-side API failure (HTTP 400 or 404), e.g. pressing a button that is not there."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
