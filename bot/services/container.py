"""The set of services handed to handlers; built once in ``bot.app``."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.access import AccessService
from bot.services.campaigns import CampaignService
from bot.services.communities import CommunityService
from bot.services.dashboard_access import DashboardAccess
from bot.services.jobs import JobRunner
from bot.services.points import PointsService
from bot.services.proposals import ProposalService
from bot.services.quiz import QuizService
from bot.services.redemptions import RedemptionService
from bot.services.report_stats import ReportStats
from bot.services.report_workflow import ReportDesk
from bot.services.reports import ReportService
from bot.services.residents import ResidentService
from bot.services.rewards import RewardService
from bot.services.surveys import SurveyService
from bot.services.volunteer_desk import VolunteerDesk
from bot.services.volunteers import VolunteerService


@dataclass(frozen=True)
class Services:
    residents: ResidentService
    communities: CommunityService
    access: AccessService
    points: PointsService
    rewards: RewardService
    redemptions: RedemptionService
    quiz: QuizService
    reports: ReportService
    report_desk: ReportDesk
    report_stats: ReportStats
    jobs: JobRunner
    campaigns: CampaignService
    volunteers: VolunteerService
    volunteer_desk: VolunteerDesk
    dashboard: DashboardAccess
    proposals: ProposalService
    surveys: SurveyService
