"""Satisfaction surveys (满意度测评): organisers create them (from the library or from scratch), residents answer
one question at a time and submit once, the bot invites and reminds through the outbox, and everyone who may see
them reads the same results.

Anonymity: in an anonymous survey the submission writes a has-answered mark (the resident, the date) and a response
without the resident (a random id, the date, the building for the breakdown); the resident's progress is deleted in
the same transaction. The points for taking part are keyed per survey and resident.

After a report is verified the reporter is asked how satisfied they are with how it was handled (a 1–5 scale and
an optional comment, kept against the report): :func:`fix_question` builds that notice for ``ReportDesk.verify``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.actions import declare
from bot.domain.campaigns import Audience, AudienceKind, Recipient
from bot.domain.errors import Forbidden
from bot.domain.notices import Choice, Notice, Priority
from bot.domain.points import AwardResult, Reason, mask_name
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.domain.surveys import (
    FIX_COMMENT_LIMIT,
    REMIND_BEFORE,
    SCALE,
    IndexPoint,
    Progress,
    Question,
    Response,
    Results,
    Survey,
    SurveyError,
    SurveyStatus,
    Texts,
    check_fix_score,
    in_locale,
    tally,
)
from bot.services.guards import community_by_id, organiser_of
from bot.services.outbox import delivery_row
from bot.services.points import PointsService, member
from bot.services.ports import Clock, Transactions, UnitOfWork, UnitOfWorkFactory
from bot.services.report_stats import mask_id
from content.surveys import SurveyTemplate

log = logging.getLogger(__name__)

# Buttons on notices the bot sends on its own, bound by handlers/surveys.py.
OPEN = declare("sv", "open", int)  # an invitation or reminder: start (or go on with) the survey
RATE_FIX = declare("sv", "fix", int, int)  # a reporter's 1–5 for how their report was handled

BATCH = 20
RECENT = 20


@dataclass(frozen=True)
class SurveyDraft:
    """What an organiser set up, before it is a survey."""

    community_id: int
    title: Texts
    questions: tuple[Question, ...]
    opens_at: datetime
    closes_at: datetime
    audience: Audience = field(default_factory=Audience)
    anonymous: bool = True
    template: str | None = None


@dataclass(frozen=True)
class Step:
    """Where a resident is in a survey: the question to answer (None: all answered, the review)."""

    survey: Survey
    progress: Progress
    question: Question | None
    number: int  # of the question asked (1-based); 0 at the review

    @property
    def total(self) -> int:
        return len(self.survey.questions)


@dataclass(frozen=True)
class Submitted:
    survey: Survey
    award: AwardResult | None


@dataclass(frozen=True)
class Listed:
    """A survey a resident may answer, and how far they are (``new``, ``started``, ``submitted``)."""

    survey: Survey
    state: str


@dataclass(frozen=True)
class Overview:
    survey: Survey
    participants: int
    community: str


class SurveyService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        transactions: Transactions,
        clock: Clock,
        points: PointsService,
        *,
        timezone: str,
        library: Mapping[str, SurveyTemplate],
    ) -> None:
        self._uow = uow
        self._tx = transactions
        self._clock = clock
        self._points = points
        self._default_zone = timezone
        self.library = dict(library)

    def zone(self, community: Community) -> ZoneInfo:
        return ZoneInfo(community.timezone or self._default_zone)

    def now(self) -> datetime:
        return self._clock()

    def local_time(self, moment: datetime) -> str:
        """A moment as residents read it (the bot's time zone), to the minute."""
        return moment.astimezone(ZoneInfo(self._default_zone)).strftime("%Y-%m-%d %H:%M")

    # ---- organisers ---------------------------------------------------------------------------------------

    async def communities_of(self, telegram_id: int) -> list[Community]:
        async with self._uow() as uow:
            person = await uow.residents.get_by_telegram_id(telegram_id)
            if person is None:
                return []
            return [c for c in await uow.communities.list() if person.has_role(Role.ORGANISER, c.id)]

    def from_library(self, key: str, community_id: int, opens_at: datetime | None = None) -> SurveyDraft:
        """A draft of a library survey opening now (or at ``opens_at``) for its usual number of days."""
        template = self.library.get(key)
        if template is None:
            raise SurveyError("unknown_template")
        opens = opens_at or self._clock()
        closes = opens + timedelta(days=template.days_open)
        return SurveyDraft(
            community_id, dict(template.title), template.questions, opens, closes, Audience(), template.anonymous, key
        )

    async def end(self, telegram_id: int, survey_id: int) -> Survey:
        """An organiser ends a survey before its time: a scheduled one is cancelled (nobody was invited), an open one
        closes now (answers in progress can no longer be submitted; what was submitted counts). Audited; a survey of
        another community is "not found", one already ended is refused."""
        now = self._clock()
        async with self._uow() as uow:
            survey = await uow.surveys.get(survey_id, for_update=True)
            if survey is None:
                raise SurveyError("no_survey")
            await self._organiser(uow, telegram_id, survey.community_id, "survey.end")
            target = {SurveyStatus.SCHEDULED: SurveyStatus.CANCELLED, SurveyStatus.OPEN: SurveyStatus.CLOSED}
            if survey.status not in target:
                raise SurveyError("closed")
            moved = target[survey.status]
            await uow.surveys.move(survey.id, survey.status, moved, closed_at=now)
            await uow.audit.add(now, telegram_id, "survey.end", True, {"survey": survey.id, "status": moved.value})
            await uow.commit()
        return survey.with_(status=moved, closed_at=now)

    async def create(self, telegram_id: int | None, draft: SurveyDraft) -> Survey:
        """Save a survey; one opening now opens at once (invitations queued in this transaction). Refused
        (audited) for anyone but an organiser of the community; ``telegram_id`` None: an operator."""
        now = self._clock()
        if draft.closes_at <= now:
            raise SurveyError("closes_in_past")
        async with self._uow() as uow:
            author = None
            if telegram_id is not None:
                author = await self._organiser(uow, telegram_id, draft.community_id, "survey.create")
            else:
                await self._community(uow, draft.community_id)
            survey = Survey(
                id=0,
                community_id=draft.community_id,
                title=dict(draft.title),
                questions=tuple(draft.questions),
                opens_at=draft.opens_at if draft.opens_at > now else now,
                closes_at=draft.closes_at,
                audience=draft.audience,
                anonymous=draft.anonymous,
                template=draft.template,
                author_id=author.id if author else None,
                created_at=now,
            )
            survey = await uow.surveys.add(survey)
            details = {
                "survey": survey.id,
                "community": survey.community_id,
                "audience": survey.audience.to_json(),
                "anonymous": survey.anonymous,
                "opens_at": survey.opens_at.isoformat(),
                "closes_at": survey.closes_at.isoformat(),
            }
            await uow.audit.add(now, telegram_id, "survey.create", True, details)
            if survey.opens_at <= now:
                survey = await self._open(uow, survey, now)
            await uow.commit()
        return survey

    async def for_organiser(self, telegram_id: int) -> list[Overview]:
        """Surveys of the communities this person organises, newest first (refused and audited otherwise)."""
        async with self._uow() as uow:
            person = await uow.residents.get_by_telegram_id(telegram_id)
            if person is None or not any(g.role is Role.ORGANISER for g in person.roles):
                await uow.audit.add(self._clock(), telegram_id, "survey.list", False, {})
                await uow.commit()
                raise Forbidden(role=Role.ORGANISER.value).audited()
            everywhere = any(g.role is Role.ORGANISER and g.community_id is None for g in person.roles)
            ids = None if everywhere else [g.community_id for g in person.roles if g.community_id is not None]
            surveys = await uow.surveys.in_communities(ids, RECENT)
            names = {c.id: c.name for c in await uow.communities.list()}
            return [Overview(s, await uow.surveys.participants(s.id), names.get(s.community_id, "")) for s in surveys]

    async def results(self, telegram_id: int | None, survey_id: int) -> Results:
        """The survey's figures (ONE computation for /stats surveys, the dashboard and the export). Organisers of
        its community only; ``telegram_id`` None: an operator."""
        async with self._uow() as uow:
            survey = await uow.surveys.get(survey_id)
            if survey is None:
                raise SurveyError("no_survey")
            if telegram_id is not None:
                await self._organiser(uow, telegram_id, survey.community_id, "survey.results", audit=False)
            responses = await uow.surveys.responses(survey.id)
        return tally(survey, responses)

    async def index_over_time(self, telegram_id: int | None, community_id: int) -> list[IndexPoint]:
        """The satisfaction index of each survey of the community that has opened, oldest first."""
        async with self._uow() as uow:
            if telegram_id is not None:
                await self._organiser(uow, telegram_id, community_id, "survey.results", audit=False)
            community = await self._community(uow, community_id)
            surveys = await uow.surveys.in_communities([community_id], RECENT)
            points = []
            for survey in reversed(surveys):
                if survey.status in (SurveyStatus.SCHEDULED, SurveyStatus.CANCELLED):
                    continue
                result = tally(survey, await uow.surveys.responses(survey.id))
                day = min(survey.closes_at, survey.closed_at or survey.closes_at).astimezone(self.zone(community))
                points.append(
                    IndexPoint(
                        survey.id, survey.title, day.date(), result.respondents, result.index, result.satisfied_share
                    )
                )
        return points

    async def export(self, survey_id: int) -> tuple[Results, list[tuple[Response, str]]]:
        """The results and every response, for the spreadsheet (an operator's command): each response with its
        respondent masked (李** · 1381****) in a named survey, "" in an anonymous one (nobody is named)."""
        async with self._uow() as uow:
            survey = await uow.surveys.get(survey_id)
            if survey is None:
                raise SurveyError("no_survey")
            responses = await uow.surveys.responses(survey_id)
            rows: list[tuple[Response, str]] = []
            for response in responses:
                who = ""
                if not survey.anonymous and response.respondent is not None:
                    person = await uow.residents.get(response.respondent)
                    if person is not None:
                        who = f"{mask_name(person.display_name)} · {mask_id(person.telegram_id)}"
                rows.append((response, who))
        results = tally(survey, responses)
        return results, [] if results.withheld else rows

    # ---- residents ----------------------------------------------------------------------------------------

    async def for_resident(self, telegram_id: int) -> list[Listed]:
        """Open surveys meant for this resident, with how far they are."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await self._resident(uow, telegram_id)
            surveys = await uow.surveys.in_communities([resident.community_id or 0], RECENT)
            started = await uow.surveys.in_progress(resident.id)
            answered = await uow.surveys.answered_by(resident.id)
        listed = []
        for survey in surveys:
            if not survey.accepts(now) or not meant_for(survey, resident):
                continue
            state = "submitted" if survey.id in answered else "started" if survey.id in started else "new"
            listed.append(Listed(survey, state))
        return listed

    async def start(self, telegram_id: int, survey_id: int) -> Step:
        """Begin or go on: the first question not answered yet, or the review when all are."""
        return await self._step(telegram_id, survey_id, lambda survey, progress: progress)

    async def answer(self, telegram_id: int, survey_id: int, key: str, value: Any) -> Step:
        return await self._step(telegram_id, survey_id, lambda s, p: p.answer(s.question(key), value), key)

    async def toggle(self, telegram_id: int, survey_id: int, key: str, option: int) -> Step:
        return await self._step(telegram_id, survey_id, lambda s, p: p.toggle(s.question(key), option), key)

    async def confirm(self, telegram_id: int, survey_id: int, key: str) -> Step:
        """Confirm the options ticked on a multiple-choice question."""
        return await self._step(
            telegram_id, survey_id, lambda s, p: p.answer(s.question(key), p.picking.get(key, [])), key
        )

    async def skip(self, telegram_id: int, survey_id: int, key: str) -> Step:
        return await self._step(telegram_id, survey_id, lambda s, p: p.skip(s.question(key)), key)

    async def change(self, telegram_id: int, survey_id: int, key: str) -> Step:
        """From the review: ask this question again."""

        def reopen(survey: Survey, progress: Progress) -> Progress:
            question = survey.question(key)
            if question.key not in progress.answers:
                raise SurveyError("stale")
            return progress.reopen(question)

        return await self._step(telegram_id, survey_id, reopen)

    async def submit(self, telegram_id: int, survey_id: int) -> Submitted:
        """Submit once: the has-answered mark, the response (no resident in an anonymous survey), the progress
        deleted, points for taking part — one transaction. A second submission (another tap, at the same time
        too) is refused with "already_submitted" and changes nothing."""
        now = self._clock()
        async with self._uow() as uow:
            resident, survey = await self._load(uow, telegram_id, survey_id, now)
            progress = await uow.surveys.progress(survey.id, resident.id, for_update=True)
            if progress is None:  # none yet, or another tap's submission deleted it while this one waited
                submitted = await uow.surveys.participated(survey.id, resident.id)
                raise SurveyError("already_submitted" if submitted else "incomplete")
            answers = progress.final(survey)
            community = await self._community(uow, survey.community_id)
            day = now.astimezone(self.zone(community)).date()
            if not await uow.surveys.participate(survey.id, resident.id, day):
                raise SurveyError("already_submitted")
            respondent = None if survey.anonymous else resident.id
            await uow.surveys.add_response(survey.id, answers, day, resident.building_id, respondent)
            await uow.surveys.drop_progress(survey.id, resident.id)
            key = f"{survey.id}:{resident.id}"
            award = await self._points.award_in(uow, resident.id, Reason.SURVEY, key, ref=f"survey:{survey.id}")
            await uow.commit()
        return Submitted(survey, award)

    async def _step(self, telegram_id: int, survey_id: int, change: Any, key: str | None = None) -> Step:
        now = self._clock()
        async with self._uow() as uow:
            resident, survey = await self._load(uow, telegram_id, survey_id, now)
            before = await uow.surveys.progress(survey.id, resident.id, for_update=True) or Progress()
            if key is not None:
                survey.question(key)  # a forged key: "no_question"
                asked = before.next_question(survey)
                if asked is None or asked.key != key:
                    raise SurveyError("stale")  # an older question's button: it was answered meanwhile
            after = change(survey, before)
            if after != before or key is None:
                await uow.surveys.save_progress(survey.id, resident.id, after, now)
                await uow.commit()
        question = after.next_question(survey)
        number = survey.questions.index(question) + 1 if question is not None else 0
        return Step(survey, after, question, number)

    async def _load(self, uow: UnitOfWork, telegram_id: int, survey_id: int, now: datetime) -> tuple[Resident, Survey]:
        resident = await self._resident(uow, telegram_id)
        survey = await uow.surveys.get(survey_id)
        if survey is None or survey.community_id != resident.community_id or not meant_for(survey, resident):
            raise SurveyError("no_survey")
        if survey.status is SurveyStatus.SCHEDULED or now < survey.opens_at:
            raise SurveyError("not_open_yet")
        if not survey.accepts(now):
            raise SurveyError("closed")
        if await uow.surveys.participated(survey.id, resident.id):
            raise SurveyError("already_submitted")
        return resident, survey

    # ---- the periodic step --------------------------------------------------------------------------------

    async def tick(self, now: datetime) -> int:
        """Open surveys whose time has come (invitations), remind before closing (those who have not submitted),
        close those whose time is up. Each survey in its own transaction; each step once (status moves and
        marks are conditional, outbox rows keyed). Returns how many steps were taken."""
        async with self._uow() as uow:
            scheduled = await uow.surveys.with_status(SurveyStatus.SCHEDULED)
            running = await uow.surveys.with_status(SurveyStatus.OPEN)
        done = 0
        for survey in scheduled:
            if survey.opens_at > now:
                continue
            async with self._tx.scope() as uow:
                await self._open(uow, survey, now)
                await uow.commit()
                done += 1
        for survey in running:
            async with self._tx.scope() as uow:
                if survey.closes_at <= now:
                    if await uow.surveys.move(survey.id, SurveyStatus.OPEN, SurveyStatus.CLOSED, closed_at=now):
                        done += 1
                        log.info("survey %s closed", survey.id)
                elif (
                    survey.closes_at - REMIND_BEFORE <= now
                    and survey.reminded_at is None
                    and await uow.surveys.mark(survey.id, "reminded_at", now)
                ):
                    await self._send(uow, survey, now, "reminder")
                    done += 1
                await uow.commit()
        return done

    async def _open(self, uow: UnitOfWork, survey: Survey, now: datetime) -> Survey:
        if not await uow.surveys.move(survey.id, SurveyStatus.SCHEDULED, SurveyStatus.OPEN, invited_at=now):
            return survey
        await self._send(uow, survey, now, "invitation")
        log.info("survey %s open", survey.id)
        return survey.with_(status=SurveyStatus.OPEN, invited_at=now)

    async def _send(self, uow: UnitOfWork, survey: Survey, now: datetime, what: str) -> int:
        """Queue the invitation (or reminder) to the audience, keyed per survey and chat; residents in their quiet
        hours get it when those end. A reminder skips those who have submitted."""
        community = await self._community(uow, survey.community_id)
        zone = self.zone(community)
        recipients = await uow.campaigns.recipients(survey.community_id, survey.audience)
        if what == "reminder":
            answered = await uow.surveys.participant_chats(survey.id)
            recipients = [r for r in recipients if r.chat_id not in answered]
        rows = []
        for recipient in recipients:
            notice = self.invitation(survey, community, recipient, what)
            held = recipient.quiet.release(now, zone) if recipient.quiet is not None else None
            rows.append(delivery_row(notice, now, held, priority=Priority.BULK))
        return await uow.campaigns.add_deliveries(rows)

    def invitation(self, survey: Survey, community: Community, recipient: Recipient, what: str) -> Notice:
        local = survey.closes_at.astimezone(self.zone(community))
        locale = recipient.locale or "zh_Hans"
        context = {
            "id": survey.id,
            "title": in_locale(survey.title, locale),
            "community": community.name,
            "closes": local.strftime("%Y-%m-%d %H:%M"),
            "questions": len(survey.questions),
            "anonymous": survey.anonymous,
            "points": self._points.policy.rule(Reason.SURVEY).points,
        }
        return Notice(
            recipient.chat_id,
            f"surveys/{what}",
            context,
            locale,
            choices=((Choice("surveys.take", OPEN, (survey.id,), {"state": "new", "title": ""}),),),
            key=f"sv:{survey.id}:{what}:{recipient.chat_id}",
            priority=Priority.BULK,
        )

    # ---- satisfaction with a report's fix ------------------------------------------------------------------

    async def rate_fix(self, telegram_id: int, report_id: int, score: int) -> bool:
        """The reporter's 1–5 for how their report was handled (once; False: given before). Only the reporter of
        a verified report may answer."""
        check_fix_score(score)
        async with self._uow() as uow:
            await self._reporter(uow, telegram_id, report_id)
            saved = await uow.surveys.save_fix(report_id, score, self._clock())
            await uow.commit()
        return saved

    async def comment_fix(self, telegram_id: int, report_id: int, text: str) -> None:
        comment = " ".join(text.split())
        if not comment:
            raise SurveyError("empty_text")
        if len(comment) > FIX_COMMENT_LIMIT:
            raise SurveyError("text_too_long", limit=FIX_COMMENT_LIMIT, length=len(comment))
        async with self._uow() as uow:
            await self._reporter(uow, telegram_id, report_id)
            if not await uow.surveys.fix_comment(report_id, comment):
                raise SurveyError("comment_taken")
            await uow.commit()

    async def _reporter(self, uow: UnitOfWork, telegram_id: int, report_id: int) -> None:
        resident = await self._resident(uow, telegram_id)
        report = await uow.reports.get(report_id)
        if report is None or report.reporter_id != resident.id or report.closed_at is None:
            raise SurveyError("no_report")

    # ---- helpers ------------------------------------------------------------------------------------------

    async def _organiser(
        self, uow: UnitOfWork, telegram_id: int, community_id: int, action: str, *, audit: bool = True
    ) -> Resident:
        return await organiser_of(uow, self._clock(), telegram_id, community_id, action, audit=audit)

    async def _community(self, uow: UnitOfWork, community_id: int) -> Community:
        return await community_by_id(uow, community_id)

    async def _resident(self, uow: UnitOfWork, telegram_id: int) -> Resident:
        return await member(uow, telegram_id)


def meant_for(survey: Survey, resident: Resident) -> bool:
    """Whether the survey's audience covers the resident (community, buildings, role)."""
    if resident.community_id != survey.community_id:
        return False
    audience = survey.audience
    if audience.kind is AudienceKind.BUILDINGS:
        return resident.building_id in audience.buildings
    if audience.kind is AudienceKind.ROLE:
        return audience.role is not None and resident.has_role(audience.role, survey.community_id)
    return True


def fix_question(report_id: int, ticket: str, chat_id: int, locale: str) -> Notice:
    """The question a reporter gets once their report is verified (keyed: once per report)."""
    buttons = tuple(Choice("surveys.fix_score", RATE_FIX, (report_id, v), {"score": v}) for v in SCALE)
    return Notice(
        chat_id,
        "surveys/fix/ask",
        {"ticket": ticket},
        locale,
        choices=(buttons,),
        key=f"sv:fix:{report_id}",
    )
