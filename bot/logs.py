"""Logging set-up: one format, quiet third-party chatter, and no secret in any line.

python-telegram-bot's HTTP client (httpx) logs every request URL at INFO, and a Bot API URL carries the bot token
(``…/bot<token>/getUpdates``); an exception text can carry it too. The filter below is installed on every handler
of the root logger, so whatever logger a record comes from, the token is replaced before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


class RedactSecrets(logging.Filter):
    """Replaces each secret in a record's message (arguments merged in) and in its exception text."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        clean = self._clean(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = self._clean(text)
            record.exc_info = None  # the cleaned text stands in for it
        elif record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


def configure(level: str | int, secrets: Iterable[str] = ()) -> None:
    """Log to stderr at ``level``; never write a secret."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line per migration step is noise at INFO
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per HTTP request (and its URL) is noise at INFO
    protect(secrets)


def protect(secrets: Iterable[str]) -> None:
    """Install the redaction filter on every handler of the root logger (once per handler)."""
    redact = RedactSecrets(secrets)
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            redact.secrets = list(dict.fromkeys([*old.secrets, *redact.secrets]))
            handler.removeFilter(old)
        handler.addFilter(redact)
