"""Composition root: builds the engine, unit of work, services, renderer, router and core. Nothing global."""

from __future__ import annotations

import logging
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

import content
from bot.certificate_files import CertificateFiles
from bot.config import Settings
from bot.conversation.core import Core
from bot.conversation.incoming import Incoming
from bot.conversation.render import ActionRenderer
from bot.conversation.router import Router
from bot.conversation.state import StateStore
from bot.domain.media import MAX_PHOTO_BYTES
from bot.domain.messaging import KEEP_FINISHED, KEEP_HANDLED
from bot.domain.residents import LOCALES, Community
from bot.qr import QrImages
from bot.rendering import Renderer
from bot.report_setup import build_reports
from bot.services.access import AccessService
from bot.services.campaigns import CampaignService
from bot.services.communities import CommunityService
from bot.services.container import Services
from bot.services.dashboard_access import DashboardAccess
from bot.services.files import FileDownloader
from bot.services.points import PointsService
from bot.services.points_reminders import PointsReminders
from bot.services.ports import Transactions, UnitOfWorkFactory
from bot.services.proposals import ProposalService
from bot.services.quiz import QuizService
from bot.services.redemptions import RedemptionService
from bot.services.report_stats import ReportStats
from bot.services.residents import ResidentService
from bot.services.rewards import RewardService
from bot.services.surveys import SurveyService
from bot.services.volunteer_desk import VolunteerDesk
from bot.services.volunteers import VolunteerService
from content.points import load_policy
from content.proposal_rules import load_rules
from content.quiz_library import load_library
from content.surveys import load_library as load_surveys
from storage.db import current_revision, head_revision, make_engine, make_sessionmaker, upgrade_async
from storage.state_store import SqlStateStore
from storage.uow import Transactions as SqlTransactions
from storage.uow import uow_factory

log = logging.getLogger(__name__)

_QR_FOLDER = Path(tempfile.gettempdir()) / "sicheng-qr"
_CERTIFICATE_FOLDER = Path(tempfile.gettempdir()) / "sicheng-certificates"

PURGE_EVERY = timedelta(minutes=10)  # forgetting old inbox and outbox rows (App.forget_old_messaging)


def utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseNotMigrated(RuntimeError):
    """The database is behind the code; ``sicheng db upgrade`` fixes it."""


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    services: Services
    renderer: Renderer
    router: Router
    core: Core
    reminders: PointsReminders
    uow: UnitOfWorkFactory
    transactions: Transactions
    _last_sweep: datetime | None = None
    _last_purge: datetime | None = None

    @property
    def single_process(self) -> bool:
        """SQLite: exactly one process serves the database (and the token)."""
        return self.engine.dialect.name == "sqlite"

    async def aclose(self) -> None:
        await self.engine.dispose()

    async def prefetch(self, incoming: Incoming) -> None:
        """Before an update's transaction: download the photos it carries (idempotent, content-addressed)."""
        if not incoming.is_private:
            return
        file_id = (incoming.photo_file_ids or (incoming.document_file_id,))[-1]
        if incoming.file_size is not None and incoming.file_size > MAX_PHOTO_BYTES:
            return  # refused by size in the handler; not worth a download (getFile fails above 20 MB anyway)
        if file_id:
            await self.services.reports.photos.prefetch(file_id)

    async def run_due_jobs(self, now: datetime) -> int:
        """Run the durable jobs due at ``now`` (timers of any feature); their messages go to the outbox."""
        return await self.services.jobs.run_due_jobs(now)

    async def purge_messaging(self, now: datetime) -> None:
        """Forget handled updates and finished outbox rows once they can matter no more."""
        async with self.transactions.scope() as uow:
            await uow.inbox.purge(now - KEEP_HANDLED)
            await uow.outbox.purge(now - KEEP_FINISHED)
            await uow.commit()

    async def forget_old_messaging(self, now: datetime) -> None:
        """Every ten minutes, not every tick: rows become forgettable after days, and the outbox's purge reads
        every row it keeps (the newest of each card) — on SQLite in the writer, on the event loop's thread."""
        if self._last_purge is not None and now - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = now
        await self.purge_messaging(now)

    async def sweep_photos(self, now: datetime) -> None:
        """Once a day: photos of abandoned drafts (and prefetched ones nobody used) are deleted."""
        if self._last_sweep is not None and now - self._last_sweep < timedelta(days=1):
            return
        self._last_sweep = now
        await self.services.reports.sweep_orphan_photos(now)
        await self.services.proposals.sweep_orphan_photos(now)

    async def tick(self, now: datetime) -> None:
        """Everything time-driven, for the periodic runner; one failing feature does not stop the others.

        Whatever a step wants said is queued in the outbox in the step's own transaction.
        """
        steps: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("expire redemptions", lambda: self.services.redemptions.expire_redemptions(now)),
            ("expire points", lambda: self.services.points.expire_points(now)),
            ("schedule expiry reminders", lambda: self.reminders.schedule(now)),
            ("group quizzes", lambda: self.services.quiz.group.due(now)),
            ("forget unclaimed group answers", lambda: self.services.quiz.group.purge_unclaimed(now)),
            ("due jobs", lambda: self.run_due_jobs(now)),
            ("start due notices", lambda: self.services.campaigns.start_due(now)),
            ("notice progress", lambda: self.services.campaigns.progress(now)),
            ("surveys: open, remind, close", lambda: self.services.surveys.tick(now)),
            ("volunteer check-in codes", lambda: self.services.volunteer_desk.refresh_codes(now)),
            ("forget old updates and sent messages", lambda: self.forget_old_messaging(now)),
            ("forget old dashboard links and sessions", lambda: self.services.dashboard.purge(now)),
            ("sweep orphan photos", lambda: self.sweep_photos(now)),
        ]
        for name, step in steps:
            try:
                await step()
            except Exception:
                log.exception("periodic step %r failed; the next tick tries again", name)


async def prepare_database(url: str) -> None:
    """SQLite (the embedded default) is migrated automatically; a server database must be upgraded on purpose."""
    if url.startswith("sqlite"):
        await upgrade_async(url)
        return
    engine = make_engine(url)
    try:
        current = await current_revision(engine)
    finally:
        await engine.dispose()
    if current != head_revision():
        raise DatabaseNotMigrated(f"database is at {current}, code needs {head_revision()}: run `sicheng db upgrade`")


def notice_library(settings: Settings) -> list[str]:
    """Keys of the recurring notices in the content library (``notices/library/<key>.j2`` in every locale)."""
    root = settings.content_dir or content.TEMPLATES
    keys = [{p.stem for p in (root / loc / "notices" / "library").glob("*.j2")} for loc in LOCALES]
    return sorted(set.intersection(*keys)) if keys else []


async def digest_facts(stats: ReportStats, community: Community, now: datetime) -> dict[str, Any]:
    """The week's figures a digest notice shows (the community's reports of the last seven days)."""
    week = await stats.figures(community.code, now - timedelta(days=7), now)
    return {
        "reports": week.total,
        "resolved": week.by_type.get("fixed", 0) + week.by_type.get("closed", 0),
        "resolve_median_h": week.resolve_median_h,
        "on_time_share": week.on_time_share,
    }


def build_renderer(settings: Settings) -> Renderer:
    return Renderer(settings.content_dir or content.TEMPLATES)


async def build_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    state_store: StateStore | None = None,
    bot_username: str = "",
    downloader: FileDownloader | None = None,
) -> App:
    """Wire every piece from settings; callers own the returned App and must ``aclose`` it."""
    from handlers import build_router

    engine = make_engine(settings.database.url, echo=settings.database.echo, pool_size=settings.database.pool_size)
    sessions = make_sessionmaker(engine)
    uow = uow_factory(sessions)
    transactions = SqlTransactions(sessions, serialise=engine.dialect.name == "sqlite")
    policy = load_policy(timezone=settings.locale.timezone)
    points = PointsService(uow, clock, policy)
    reports = build_reports(settings, uow, clock, points, transactions, downloader)
    renderer = build_renderer(settings)
    # Certificate PDFs derive from the registered certificate, so a temporary folder is enough (redrawn when missing).
    certificates = CertificateFiles(_CERTIFICATE_FOLDER, renderer.label)
    volunteers = VolunteerService(uow, clock, points, timezone=settings.locale.timezone, documents=certificates)
    volunteers.register_jobs(reports.jobs)
    proposals = ProposalService(
        uow, clock, defaults=load_rules(), timezone=settings.locale.timezone, photos=reports.service.photos
    )
    proposals.register_jobs(reports.jobs)
    services = Services(
        residents=ResidentService(uow, clock, timezone=settings.locale.timezone, photos=reports.service.photos),
        communities=CommunityService(uow),
        access=AccessService(uow, clock),
        points=points,
        rewards=RewardService(uow, clock),
        # QR images derive from the code, so a temporary folder is enough: they are redrawn when missing.
        redemptions=RedemptionService(uow, clock, policy, secrets.SystemRandom(), QrImages(_QR_FOLDER)),
        quiz=QuizService(uow, clock, points, load_library()),
        reports=reports.service,
        report_desk=reports.desk,
        report_stats=reports.stats,
        jobs=reports.jobs,
        campaigns=CampaignService(
            uow,
            transactions,
            clock,
            timezone=settings.locale.timezone,
            facts=lambda community, now: digest_facts(reports.stats, community, now),
            templates=notice_library(settings),
        ),
        volunteers=volunteers,
        volunteer_desk=VolunteerDesk(uow, clock, volunteers),
        dashboard=DashboardAccess(
            uow,
            clock,
            url=settings.dashboard.url,
            link_minutes=settings.dashboard.link_minutes,
            session_hours=settings.dashboard.session_hours,
        ),
        proposals=proposals,
        surveys=SurveyService(
            uow, transactions, clock, points, timezone=settings.locale.timezone, library=load_surveys()
        ),
    )
    router = build_router()
    store = state_store or SqlStateStore(sessions, clock)
    router.check_refs()
    core = Core(
        router,
        services,
        store,
        ActionRenderer(renderer),
        settings={"bot_username": bot_username},
        savepoint=transactions.savepoint,
    )
    reminders = PointsReminders(uow, points, reports.jobs)
    return App(settings, engine, services, renderer, router, core, reminders, uow, transactions)
