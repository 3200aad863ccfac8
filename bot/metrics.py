"""Prometheus metrics of one process, and the ``GET /metrics`` endpoint that serves them.

Every figure lives in :data:`REGISTRY` (not the library's global one, so tests read exact values); the rest of the
code calls the small functions below, one line per call site:

* the inbox: :func:`timed_update` around an update's transaction (count by kind and outcome, latency, log context);
* the send gate: :func:`telegram_429`, :func:`telegram_403`; the outbox dispatcher: :func:`outbox_sent`,
  :func:`outbox_failed`;
* figures that live in the database (inbox and outbox backlog, job lag) are read by :func:`refresh_figures`, at most
  every :data:`REFRESH_SECONDS`, when the endpoint is scraped — a process whose metrics are off never reads them.

Counters count what this process did; with several workers each serves its own (Prometheus sums them). The
database figures are the same in every process (use ``max`` across them).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from bot import logs
from bot.domain.notices import Priority

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.conversation.incoming import Incoming
    from bot.services.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)

KINDS = ("message", "command", "callback", "poll_answer", "other")
OUTCOMES = ("ok", "error", "refused", "deferred", "set_aside")
FAILURES = ("refused", "render", "telegram", "retries")
# Handling an update takes milliseconds when all is well; seconds mean a slow database or a lock held long.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REFRESH_SECONDS = 5.0

# No ``*_created`` series next to each counter: half the series, nothing lost for alerts.
disable_created_metrics()  # type: ignore[no-untyped-call]
REGISTRY = CollectorRegistry(auto_describe=True)

UPDATES = Counter("sicheng_updates", "Updates handled, by kind and outcome.", ["kind", "outcome"], registry=REGISTRY)
UPDATE_SECONDS = Histogram(
    "sicheng_update_seconds",
    "Seconds from the start of an update's transaction (handler included) to its commit.",
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "sicheng_outbox_backlog",
    "Messages waiting in the outbox (due or held until later), by priority.",
    ["priority"],
    registry=REGISTRY,
)
OUTBOX_SENT = Counter("sicheng_outbox_sent", "Outbox messages Telegram accepted.", registry=REGISTRY)
OUTBOX_FAILED = Counter(
    "sicheng_outbox_failed",
    "Outbox messages failed for good, by reason: refused (cannot be sent as queued), render (template), "
    "telegram (Telegram refused it), retries (network or 5xx errors until the last attempt).",
    ["reason"],
    registry=REGISTRY,
)
TELEGRAM_429 = Counter(
    "sicheng_telegram_429", "429 Too Many Requests answers (all sends of the token paused).", registry=REGISTRY
)
TELEGRAM_403 = Counter(
    "sicheng_telegram_403", "403 answers (the person blocked the bot, or it left the group).", registry=REGISTRY
)
JOB_LAG = Gauge(
    "sicheng_job_lag_seconds",
    "Age of the oldest durable job that is due and not done yet (0: none).",
    registry=REGISTRY,
)
INBOX_PENDING = Gauge("sicheng_inbox_pending", "Updates stored and not handled yet.", registry=REGISTRY)
FIGURE_FAILURES = Counter(
    "sicheng_figures_failures",
    "Times the database figures (backlog, lag, pending) could not be read: they keep their last value.",
    registry=REGISTRY,
)

for _kind in KINDS:  # every series exists from the start, so rate() and alerts see a 0, not nothing
    for _outcome in OUTCOMES:
        UPDATES.labels(_kind, _outcome)
for _reason in FAILURES:
    OUTBOX_FAILED.labels(_reason)
for _priority in Priority:
    OUTBOX_BACKLOG.labels(_priority.name.lower())


# ---- updates -------------------------------------------------------------------------------------------------------


def update_kind(incoming: Incoming) -> str:
    if incoming.callback_id is not None:
        return "callback"
    if incoming.poll_answer is not None:
        return "poll_answer"
    if incoming.command is not None:
        return "command"
    if incoming.new_members or incoming.message_id is None:
        return "other"
    return "message"


@contextlib.contextmanager
def timed_update(incoming: Incoming) -> Iterator[logs.UpdateContext]:
    """Around an update's transaction: names the update in log records (:func:`bot.logs.update_context`), then
    counts it by kind and outcome and, once committed, its latency.

    Outcome: ``deferred`` (the handler asked to be run again later), ``error`` (an exception left the block, or an
    error was logged meanwhile: the handler failed and the person got an apology), else whatever
    :func:`mark_update` said (``refused``, ``set_aside``), else ``ok``.
    """
    started = time.perf_counter()
    outcome = "error"
    with logs.update_context(incoming.update_id, incoming.user_id) as context:
        try:
            yield context
        except BaseException as error:
            outcome = "deferred" if type(error).__name__ == "Deferred" else "error"
            raise
        else:
            UPDATE_SECONDS.observe(time.perf_counter() - started)
            outcome = "error" if context.failed else context.outcome or "ok"
        finally:
            UPDATES.labels(update_kind(incoming), outcome).inc()


def mark_update(outcome: str) -> None:
    """Tell the update being handled (if any) how it went, e.g. ``refused`` by a permission check."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    context = logs.current_update()
    if context is not None:
        context.outcome = outcome


# ---- Telegram and the outbox --------------------------------------------------------------------------------------


def telegram_429() -> None:
    TELEGRAM_429.inc()


def telegram_403() -> None:
    TELEGRAM_403.inc()


def outbox_sent() -> None:
    OUTBOX_SENT.inc()


def outbox_failed(reason: str) -> None:
    OUTBOX_FAILED.labels(reason if reason in FAILURES else "telegram").inc()


# ---- figures from the database ------------------------------------------------------------------------------------


@dataclass
class _Refresh:
    at: float = -1e18


_last = _Refresh()


async def refresh_figures(uow: UnitOfWorkFactory, now: datetime | None = None, *, every: float | None = None) -> bool:
    """Read the inbox and outbox backlog and the job lag (three small indexed queries) unless they were read less
    than ``every`` seconds ago. Returns whether they were read; a failure is logged and counted, never raised."""
    moment = time.monotonic()
    if moment - _last.at < (REFRESH_SECONDS if every is None else every):
        return False
    _last.at = moment
    now = now or datetime.now(UTC)
    try:
        async with uow() as tx:
            pending = await tx.inbox.pending_count()
            backlog = await tx.outbox.backlog()
            oldest = await tx.jobs.oldest_due(now)
    except Exception as error:
        FIGURE_FAILURES.inc()
        log.warning("metrics: could not read the database figures (%s: %s)", type(error).__name__, error)
        return False
    INBOX_PENDING.set(pending)
    for priority in Priority:
        OUTBOX_BACKLOG.labels(priority.name.lower()).set(0)
    for value, count in backlog.items():
        OUTBOX_BACKLOG.labels(_priority_name(value)).set(count)
    JOB_LAG.set(max(0.0, (now - _aware(oldest)).total_seconds()) if oldest is not None else 0.0)
    return True


def _priority_name(value: int) -> str:
    try:
        return Priority(value).name.lower()
    except ValueError:
        return str(value)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def render() -> bytes:
    """Every metric of this process in Prometheus' text format."""
    return generate_latest(REGISTRY)


# ---- the endpoint -------------------------------------------------------------------------------------------------


@dataclass
class MetricsServer:
    """What :func:`start_metrics_server` started; ``await server()`` (or ``stop()``) stops it. ``url`` is None
    when metrics are off."""

    url: str | None
    _stop: Callable[[], Awaitable[None]] | None = None

    async def stop(self) -> None:
        if self._stop is not None:
            stop, self._stop = self._stop, None
            await stop()

    async def __call__(self) -> None:
        await self.stop()


async def start_metrics_server(
    settings: Settings, uow: UnitOfWorkFactory | None = None, *, port: int | None = None
) -> MetricsServer:
    """Serve ``GET /metrics`` on ``settings.metrics.host:port`` (``port`` overrides the setting, e.g. one per worker
    process); with ``uow`` the database figures are refreshed on a scrape (at most every few seconds). Port 0 (the
    default setting): metrics are off and nothing is started."""
    from aiohttp import web

    where = settings.metrics.port if port is None else port
    if not where:
        return MetricsServer(None)

    async def metrics(_: web.Request) -> web.Response:
        if uow is not None:
            await refresh_figures(uow)
        response = web.Response(body=render())
        response.headers["Content-Type"] = CONTENT_TYPE_PLAIN_0_0_4  # the classic text format every scraper reads
        return response

    application = web.Application()
    application.router.add_get("/metrics", metrics)
    runner = web.AppRunner(application, access_log=None)  # a line per scrape would be noise
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.metrics.host, where)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    url = f"http://{settings.metrics.host}:{where}/metrics"
    log.info("metrics served at %s", url)
    return MetricsServer(url, runner.cleanup)
