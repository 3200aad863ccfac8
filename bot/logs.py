"""Logging set-up: one format (text, or one JSON object a line), quiet third-party chatter, no secret in any line.

python-telegram-bot's HTTP client (httpx) logs every request URL at INFO, and a Bot API URL carries the bot token
(``…/bot<token>/getUpdates``); httpcore, aiohttp, an exception text or a stack can carry it too. Two guards:

* a filter on every handler of the root logger replaces each secret in the record itself (message with its
  arguments merged in, exception text, stack), so whatever logger a record comes from, any handler writing it
  gets the clean text;
* the formatters of the handler :func:`configure` installs clean the finished line once more (text and JSON), so
  nothing a record carries elsewhere (an attribute a formatter prints) can bring a secret back.

While an update is handled, :func:`update_context` names it (update id, sender); every record logged meanwhile, in
that task and the tasks it starts, carries ``update_id`` and ``user_id`` (JSON lines show them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import traceback
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote

MASK = "***"
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HANDLER_NAME = "sicheng"
# Loggers that write a line per step or per HTTP request at INFO: quiet unless the level is DEBUG.
CHATTY = ("alembic", "httpx")


# ---- the update being handled -------------------------------------------------------------------------------------


@dataclass
class UpdateContext:
    """The update the current task is handling. ``failed``: an error was logged meanwhile (the handler failed and the
    person was apologised to, or storage failed); ``outcome``: set by code that knows better (``bot.metrics``)."""

    update_id: int
    user_id: int | None
    failed: bool = False
    outcome: str | None = None


_current: ContextVar[UpdateContext | None] = ContextVar("sicheng_update", default=None)


@contextlib.contextmanager
def update_context(update_id: int, user_id: int | None) -> Iterator[UpdateContext]:
    """Name the update being handled for every record logged inside (tasks started inside inherit it)."""
    context = UpdateContext(update_id, user_id)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current_update() -> UpdateContext | None:
    return _current.get()


class UpdateFields(logging.Filter):
    """Adds ``update_id`` / ``user_id`` of the update being handled to each record (None outside handling), and
    notes an ERROR record on that update."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        record.update_id = context.update_id if context is not None else None
        record.user_id = context.user_id if context is not None else None
        if context is not None and record.levelno >= logging.ERROR:
            context.failed = True
        return True


# ---- secrets ------------------------------------------------------------------------------------------------------


class Redactor:
    """The secrets to mask, each also in the forms it takes in a URL or a log line: a bot token ``<id>:<secret>`` as
    a whole, its secret part alone, and percent-encoded."""

    def __init__(self) -> None:
        self._forms: list[str] = []

    def add(self, secrets: Iterable[str]) -> None:
        forms = set(self._forms)
        for secret in secrets:
            if not secret:
                continue
            forms.update({secret, quote(secret, safe="")})
            _, colon, rest = secret.partition(":")
            if colon and len(rest) >= 8:  # a bot token: the part after the bot id is the secret
                forms.add(rest)
        self._forms = sorted(forms, key=len, reverse=True)  # the whole token before its part

    @property
    def active(self) -> bool:
        return bool(self._forms)

    def clean(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text


REDACTOR = Redactor()


class RedactSecrets(logging.Filter):
    """Replaces each secret in a record's message (arguments merged in), its exception text and its stack."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redactor.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the message: let the handler report that, cleaned
            message = f"{record.msg!r} % {record.args!r}"
        clean = self.redactor.clean(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = self.redactor.clean(text)
            record.exc_info = None  # the cleaned text stands in for it
        elif record.exc_text:
            record.exc_text = self.redactor.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redactor.clean(record.stack_info)
        return True


# ---- formats ------------------------------------------------------------------------------------------------------


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` (traceback on the following lines), secrets masked in the finished text."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.clean(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``; ``update_id`` and
    ``user_id`` while an update is handled; ``exception`` and ``stack`` when there are any. Secrets masked."""

    def __init__(self, redactor: Redactor = REDACTOR) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _current.get()
        update_id = getattr(record, "update_id", context.update_id if context else None)
        user_id = getattr(record, "user_id", context.user_id if context else None)
        if update_id is not None:
            entry["update_id"] = update_id
        if user_id is not None:
            entry["user_id"] = user_id
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return self.redactor.clean(json.dumps(entry, ensure_ascii=False, default=str))


# ---- set-up -------------------------------------------------------------------------------------------------------


def configure(
    level: str | int, secrets: Iterable[str] = (), *, fmt: str = "text", stream: IO[str] | None = None
) -> logging.Handler | None:
    """Log at ``level`` to stderr (or ``stream``) as ``fmt`` ("text" or "json"); never write a secret.

    Like :func:`logging.basicConfig`, nothing is installed when someone else (a test runner) configured the root
    logger already, unless a ``stream`` is given; secrets are masked on their handlers all the same. Returns the
    installed handler (None when none was). Calling it again replaces the handler it installed before.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    REDACTOR.add(secrets)
    root = logging.getLogger()
    mine = [h for h in root.handlers if h.get_name() == HANDLER_NAME]
    handler: logging.Handler | None = None
    if stream is not None or mine or not root.handlers:
        for old in mine:
            root.removeHandler(old)
        handler = logging.StreamHandler(stream)  # None: stderr
        handler.set_name(HANDLER_NAME)
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
        root.addHandler(handler)
        root.setLevel(level)
    numeric = logging.getLevelName(level) if isinstance(level, str) else level
    for name in CHATTY:  # a line per migration step or HTTP request (and its URL) is noise above DEBUG
        logging.getLogger(name).setLevel(logging.NOTSET if numeric == logging.DEBUG else logging.WARNING)
    protect(())
    return handler


def protect(secrets: Iterable[str]) -> None:
    """Mask ``secrets`` (with those given before) on every handler of the root logger, and add the update's fields."""
    REDACTOR.add(secrets)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
        if not any(isinstance(f, UpdateFields) for f in handler.filters):
            handler.addFilter(UpdateFields())
