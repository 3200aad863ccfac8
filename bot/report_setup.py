"""Wiring of the report feature (随手拍 / 问题台账) and the durable job runner, called by ``bot.app``."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.services.files import FileDownloader, LocalFileStore, PhotoIntake
from bot.services.jobs import JobRunner
from bot.services.points import PointsService
from bot.services.ports import Clock, Transactions, UnitOfWorkFactory
from bot.services.report_jobs import ReportTimers
from bot.services.report_notices import Notifier
from bot.services.report_stats import ReportStats
from bot.services.report_workflow import ReportDesk
from bot.services.reports import ReportService
from content.report_categories import load_report_policy


@dataclass(frozen=True)
class ReportParts:
    service: ReportService
    desk: ReportDesk
    stats: ReportStats
    jobs: JobRunner


def build_reports(
    settings: Settings,
    uow: UnitOfWorkFactory,
    clock: Clock,
    points: PointsService,
    transactions: Transactions,
    downloader: FileDownloader | None = None,
) -> ReportParts:
    """The report services on one file store and policy; report timers registered on a fresh job runner."""
    policy = load_report_policy()
    timezone = ZoneInfo(settings.locale.timezone)
    photos = PhotoIntake(LocalFileStore(settings.files.root), clock, downloader)
    notifier = Notifier(policy, timezone, photos.locate, settings.locale.default)
    jobs = JobRunner(uow, clock, transactions)
    ReportTimers(uow, notifier).register(jobs)
    return ReportParts(
        ReportService(uow, clock, policy, photos, notifier, points),
        ReportDesk(uow, clock, policy, notifier, points),
        ReportStats(uow, clock, policy, timezone, photos.locate),
        jobs,
    )
