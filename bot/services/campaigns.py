"""Campaign notices (通知公告): organisers compose, schedule and send; residents read and choose what they get.

Sending a campaign fans it out, in one transaction, into one outbox row per recipient (bulk priority, keyed per
campaign and chat, so a repeated fan-out adds nothing). A resident in quiet hours gets a row that waits until
they end (not for urgent notices). The dispatcher paces and delivers the rows; :meth:`CampaignService.progress`
edits the organiser's progress message every few seconds and, when nothing is left, sends the report.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.actions import declare
from bot.domain.campaigns import (
    PROGRESS_EVERY,
    RECENT_DAYS,
    TRACKS,
    AudienceKind,
    ButtonKind,
    Campaign,
    CampaignError,
    CampaignStatus,
    Counts,
    Draft,
    Preferences,
    QuietHours,
    Recipient,
    check_schedule,
    paid_cost,
    parse_local_time,
)
from bot.domain.errors import Forbidden, NotFound
from bot.domain.notices import Choice, Notice, Priority
from bot.domain.residents import Community, Resident, make_deep_link
from bot.domain.roles import Role
from bot.services.guards import community_by_id, organiser_of
from bot.services.outbox import delivery_row, queue
from bot.services.ports import Clock, Transactions, UnitOfWork, UnitOfWorkFactory
from bot.services.volunteer_actions import OPEN_ACTIVITY

log = logging.getLogger(__name__)

# Buttons a notice may carry, bound by handlers/notices.py.
OPEN_QUIZ = declare("nt", "quiz", str)  # take a quiz of a track
OPEN_REWARDS = declare("nt", "rewards")
OPEN_REPORT = declare("nt", "report")
STOP = declare("nt", "stop", int)  # the organiser stops a campaign that is sending

TEMPLATE = "notices/campaign"
BATCH = 20

Facts = Callable[[Community, datetime], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Overview:
    """A campaign with the figures an organiser sees: live counts while it sends, final ones after."""

    campaign: Campaign
    counts: Counts
    community: str


class CampaignService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        transactions: Transactions,
        clock: Clock,
        *,
        timezone: str,
        facts: Facts | None = None,
        templates: Sequence[str] = (),
    ) -> None:
        self._uow = uow
        self._tx = transactions
        self._clock = clock
        self._default_zone = timezone
        self._facts = facts
        self.templates = tuple(templates)  # keys of the content library's recurring notices

    def zone(self, community: Community) -> ZoneInfo:
        return ZoneInfo(community.timezone or self._default_zone)

    # ---- organisers -------------------------------------------------------------------------------------

    async def communities_of(self, telegram_id: int) -> list[Community]:
        """Communities this person may send notices in (organiser there, or everywhere)."""
        async with self._uow() as uow:
            organiser = await uow.residents.get_by_telegram_id(telegram_id)
            if organiser is None:
                return []
            return [c for c in await uow.communities.list() if organiser.has_role(Role.ORGANISER, c.id)]

    async def audience_size(self, telegram_id: int, draft: Draft) -> int:
        async with self._uow() as uow:
            await self._organiser(uow, telegram_id, draft.community_id, "notice.preview")
            return len(await uow.campaigns.recipients(draft.community_id, draft.audience))

    async def held(self, telegram_id: int, draft: Draft) -> int:
        """How many recipients would be in their quiet hours when the notice goes (their copy waits until those
        end); 0 for an urgent notice."""
        if draft.urgent or draft.audience.kind is AudienceKind.GROUPS:
            return 0
        at = draft.send_at or self._clock()
        async with self._uow() as uow:
            await self._organiser(uow, telegram_id, draft.community_id, "notice.preview", audit=False)
            zone = self.zone(await self._community(uow, draft.community_id))
            recipients = await uow.campaigns.recipients(draft.community_id, draft.audience)
        return sum(1 for r in recipients if r.quiet is not None and r.quiet.release(at, zone) is not None)

    def cost(self, recipients: int) -> float:
        return paid_cost(recipients)

    def schedule_time(self, community: Community, text: str) -> datetime:
        """A time an organiser typed, read in the community's time zone against this service's clock (raises
        CampaignError "bad_time", "time_in_past", "time_too_far")."""
        return parse_local_time(text, self._clock(), self.zone(community))

    async def create(self, telegram_id: int | None, draft: Draft, *, progress_chat_id: int | None = None) -> Campaign:
        """Save a composed notice: due now it starts at once (in this transaction), otherwise it waits for its
        time. Refused (audited) for anyone but an organiser of the community; an empty audience is refused.
        ``telegram_id`` None: an operator at the command line (no role check, no progress message)."""
        now = self._clock()
        send_at = now if draft.send_at is None else check_schedule(draft.send_at, now)
        if draft.template is not None and draft.template not in self.templates:
            raise CampaignError("unknown_template")
        async with self._uow() as uow:
            author = None
            if telegram_id is not None:
                author = await self._organiser(uow, telegram_id, draft.community_id, "notice.create")
            else:
                await self._community(uow, draft.community_id)
            recipients = await uow.campaigns.recipients(draft.community_id, draft.audience)
            if not recipients:
                raise CampaignError("empty_audience")
            campaign = await uow.campaigns.add(
                Campaign(
                    id=0,
                    community_id=draft.community_id,
                    author_id=author.id if author else None,
                    status=CampaignStatus.SCHEDULED,
                    body=draft.body,
                    send_at=send_at,
                    created_at=now,
                    audience=draft.audience,
                    track=draft.track,
                    photo=draft.photo,
                    buttons=draft.buttons,
                    urgent=draft.urgent,
                    paid=draft.paid,
                    repeat_weekly=draft.repeat_weekly,
                    template=draft.template,
                    recipients=len(recipients),
                    progress_chat_id=progress_chat_id if progress_chat_id is not None else telegram_id,
                )
            )
            details = {
                "campaign": campaign.id,
                "community": draft.community_id,
                "audience": draft.audience.to_json(),
                "recipients": len(recipients),
                "send_at": send_at.isoformat(),
                "urgent": draft.urgent,
                "paid": draft.paid,
            }
            await uow.audit.add(now, telegram_id, "notice.create", True, details)
            if draft.send_at is None:
                campaign = await self._start(uow, campaign, now)
            await uow.commit()
        return campaign

    async def cancel(self, telegram_id: int, campaign_id: int) -> Campaign:
        """Cancel a scheduled notice, or stop one that is sending (what was sent stays sent)."""
        campaign, _ = await self.stop(telegram_id, campaign_id)
        return campaign

    async def stop(self, telegram_id: int | None, campaign_id: int) -> tuple[Campaign, int]:
        """Cancel or stop a notice; returns it and how many waiting deliveries were stopped. ``telegram_id`` None:
        an operator at the command line (no role check)."""
        now = self._clock()
        async with self._uow() as uow:
            campaign = await uow.campaigns.get(campaign_id, for_update=True)
            if campaign is None:
                raise NotFound(what="notice", id=campaign_id)
            if telegram_id is not None:
                await self._organiser(uow, telegram_id, campaign.community_id, "notice.cancel")
            if campaign.status not in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING):
                raise CampaignError("not_cancellable", status=campaign.status.value)
            stopped = 0
            if campaign.status is CampaignStatus.SENDING:
                stopped = await uow.campaigns.cancel_deliveries(campaign.id, now)
            else:
                await uow.campaigns.move(campaign.id, CampaignStatus.SCHEDULED, CampaignStatus.CANCELLED)
                await uow.campaigns.update(campaign.id, finished_at=now)
            details = {"campaign": campaign.id, "stopped": stopped, "by": "organiser" if telegram_id else "operator"}
            await uow.audit.add(now, telegram_id, "notice.cancel", True, details)
            await uow.commit()
            updated = await uow.campaigns.get(campaign.id)
        assert updated is not None
        return updated, stopped

    async def overview(self, telegram_id: int, campaign_id: int) -> Overview:
        async with self._uow() as uow:
            campaign = await uow.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(what="notice")
            await self._organiser(uow, telegram_id, campaign.community_id, "notice.view", audit=False)
            return await self._overview(uow, campaign)

    async def for_organiser(self, telegram_id: int, limit: int = 10) -> list[Overview]:
        """Recent and scheduled notices of the communities this person organises, newest first."""
        now = self._clock()
        async with self._uow() as uow:
            organiser = await uow.residents.get_by_telegram_id(telegram_id)
            if organiser is None or not any(g.role is Role.ORGANISER for g in organiser.roles):
                await uow.audit.add(now, telegram_id, "notice.list", False, {})
                await uow.commit()
                raise Forbidden(role=Role.ORGANISER.value).audited()
            everywhere = any(g.role is Role.ORGANISER and g.community_id is None for g in organiser.roles)
            ids = None if everywhere else [g.community_id for g in organiser.roles if g.community_id is not None]
            statuses = list(CampaignStatus)
            campaigns = await uow.campaigns.recent(ids, now - timedelta(days=RECENT_DAYS), limit, statuses)
            return [await self._overview(uow, c) for c in campaigns]

    async def preview(self, telegram_id: int, draft: Draft, locale: str) -> Notice:
        """The notice exactly as a resident reading ``locale`` gets it, addressed to the organiser."""
        now = self._clock()
        async with self._uow() as uow:
            await self._organiser(uow, telegram_id, draft.community_id, "notice.preview", audit=False)
            community = await self._community(uow, draft.community_id)
            campaign = Campaign(
                id=0,
                community_id=draft.community_id,
                author_id=None,
                status=CampaignStatus.SCHEDULED,
                body=draft.body,
                send_at=draft.send_at or now,
                created_at=now,
                audience=draft.audience,
                track=draft.track,
                photo=draft.photo,
                buttons=draft.buttons,
                urgent=draft.urgent,
                template=draft.template,
            )
            facts = await self._placeholders(campaign, community, now)
        return self.notice(campaign, community, Recipient(telegram_id, locale), facts, preview=True)

    # ---- residents --------------------------------------------------------------------------------------

    async def for_resident(self, telegram_id: int, limit: int = 10) -> list[tuple[Campaign, Community]]:
        """Recent notices of the resident's community that were meant for them."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if resident is None or resident.community_id is None:
                return []
            community = await self._community(uow, resident.community_id)
            prefs = await uow.campaigns.preferences(resident.id)
            statuses = [CampaignStatus.SENDING, CampaignStatus.DONE]
            recent = await uow.campaigns.recent(
                [resident.community_id], now - timedelta(days=RECENT_DAYS), limit * 3, statuses
            )
        return [(c, community) for c in recent if _meant_for(c, resident, prefs)][:limit]

    async def preferences(self, telegram_id: int) -> Preferences:
        async with self._uow() as uow:
            resident = await self._resident(uow, telegram_id)
            return await uow.campaigns.preferences(resident.id)

    async def set_notices(self, telegram_id: int, on: bool) -> Preferences:
        return await self._change(telegram_id, notices_off=not on)

    async def set_quiet(self, telegram_id: int, quiet: QuietHours | None) -> Preferences:
        return await self._change(telegram_id, quiet=quiet)

    async def toggle_track(self, telegram_id: int, track: str) -> Preferences:
        async with self._uow() as uow:
            resident = await self._resident(uow, telegram_id)
            prefs = await uow.campaigns.preferences(resident.id)
        if track not in TRACKS:
            raise CampaignError("unknown_track")
        tracks = prefs.tracks ^ {track}
        return await self._change(telegram_id, tracks=frozenset(tracks))

    async def _change(self, telegram_id: int, **fields: Any) -> Preferences:
        async with self._uow() as uow:
            resident = await self._resident(uow, telegram_id)
            prefs = await uow.campaigns.preferences(resident.id)
            new = Preferences(
                fields.get("notices_off", prefs.notices_off),
                fields.get("quiet", prefs.quiet),
                fields.get("tracks", prefs.tracks),
            )
            await uow.campaigns.save_preferences(resident.id, new, self._clock())
            await uow.commit()
        return new

    # ---- the periodic steps -----------------------------------------------------------------------------

    async def start_due(self, now: datetime) -> int:
        """Start every scheduled campaign whose time has come (each in its own transaction)."""
        async with self._uow() as uow:
            due = await uow.campaigns.due(now, BATCH)
        started = 0
        for campaign_id in due:
            async with self._tx.scope() as uow:
                campaign = await uow.campaigns.get(campaign_id, for_update=True)
                if campaign is None or campaign.status is not CampaignStatus.SCHEDULED:
                    continue
                await self._start(uow, campaign, now)
                await uow.commit()
                started += 1
        return started

    async def progress(self, now: datetime) -> int:
        """Edit the progress message of each sending campaign (at most every few seconds), and finish those
        with nothing left: final counts kept, report sent. Returns how many finished."""
        async with self._uow() as uow:
            sending = await uow.campaigns.with_status(CampaignStatus.SENDING)
        finished = 0
        for campaign in sending:
            async with self._tx.scope() as uow:
                counts = await uow.campaigns.deliveries(campaign.id)
                if counts.pending == 0:
                    if await self._finish(uow, campaign, counts, now):
                        finished += 1
                elif campaign.progress_at is None or now - campaign.progress_at >= PROGRESS_EVERY:
                    waiting = await uow.campaigns.waiting(campaign.id, now)
                    await self._progress(uow, campaign, counts, now, waiting=waiting)
                    await uow.campaigns.update(campaign.id, progress_at=now)
                await uow.commit()
        return finished

    async def _start(self, uow: UnitOfWork, campaign: Campaign, now: datetime) -> Campaign:
        """Fan out: one outbox row per recipient, the first progress message, and next week's copy."""
        moved = await uow.campaigns.move(
            campaign.id, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, started_at=now, progress_at=now
        )
        if not moved:
            return campaign
        community = await self._community(uow, campaign.community_id)
        recipients = await uow.campaigns.recipients(campaign.community_id, campaign.audience)
        facts = await self._placeholders(campaign, community, now)
        zone = self.zone(community)
        rows = []
        for recipient in recipients:
            notice = self.notice(campaign, community, recipient, facts)
            held = None if campaign.urgent or recipient.quiet is None else recipient.quiet.release(now, zone)
            rows.append(delivery_row(notice, now, held, priority=Priority.BULK, campaign_id=campaign.id))
        added = await uow.campaigns.add_deliveries(rows)
        campaign = campaign.with_(status=CampaignStatus.SENDING, started_at=now, recipients=len(recipients))
        await uow.campaigns.update(campaign.id, recipients=len(recipients))
        in_quiet = sum(1 for row in rows if row["not_before"] is not None)
        await self._progress(uow, campaign, Counts(pending=added), now, first=True, waiting=min(in_quiet, added))
        if campaign.repeat_weekly:
            await uow.campaigns.add(
                campaign.with_(
                    id=0,
                    status=CampaignStatus.SCHEDULED,
                    send_at=campaign.send_at + timedelta(days=7),
                    created_at=now,
                    series_id=campaign.series_id or campaign.id,
                    started_at=None,
                    finished_at=None,
                    recipients=0,
                    counts=Counts(),
                    failures={},
                    progress_at=None,
                )
            )
        log.info("campaign %s started: %s recipients", campaign.id, len(recipients))
        return campaign

    async def _finish(self, uow: UnitOfWork, campaign: Campaign, counts: Counts, now: datetime) -> bool:
        failures = await uow.campaigns.failure_reasons(campaign.id)
        moved = await uow.campaigns.move(
            campaign.id, CampaignStatus.SENDING, CampaignStatus.DONE, finished_at=now, counts=counts, failures=failures
        )
        if not moved:
            return False
        finished = campaign.with_(status=CampaignStatus.DONE, finished_at=now, counts=counts, failures=failures)
        await self._progress(uow, finished, counts, now)
        chat = campaign.progress_chat_id
        if chat is not None:
            locale = await self._locale(uow, chat)
            context = self._summary(finished, counts) | {"failures": failures, "took": _seconds(campaign, now)}
            await queue(uow, Notice(chat, "notices/report", context, locale, key=f"cn:{campaign.id}:report"), now)
        log.info("campaign %s done: %s", campaign.id, counts.to_json())
        return True

    async def _progress(
        self,
        uow: UnitOfWork,
        campaign: Campaign,
        counts: Counts,
        now: datetime,
        *,
        first: bool = False,
        waiting: int = 0,
    ) -> None:
        chat = campaign.progress_chat_id
        if chat is None:
            return
        locale = await self._locale(uow, chat)
        eta = counts.eta(campaign.started_at or now, now, waiting) if campaign.started_at else None
        context = self._summary(campaign, counts) | {
            "eta": int(eta.total_seconds()) if eta is not None else None,
            "waiting": waiting,
        }
        stop: tuple[tuple[Choice, ...], ...] = ()
        if campaign.status is CampaignStatus.SENDING:
            stop = ((Choice("notices.btn.stop", STOP, (campaign.id,)),),)
        notice = Notice(
            chat,
            "notices/progress",
            context,
            locale,
            choices=stop,
            ref=f"cn{campaign.id}",
            edit=not first,
            key=f"cn:{campaign.id}:progress" if first else f"cn:{campaign.id}:p:{counts.done}:{counts.pending}",
        )
        await queue(uow, notice, now)

    def _summary(self, campaign: Campaign, counts: Counts) -> dict[str, Any]:
        return {
            "id": campaign.id,
            "status": campaign.status.value,
            "recipients": campaign.recipients,
            "counts": counts.to_json(),
            "done": counts.done,
            "total": counts.total,
        }

    # ---- rendering -----------------------------------------------------------------------------------

    def notice(
        self,
        campaign: Campaign,
        community: Community,
        recipient: Recipient,
        facts: dict[str, Any],
        *,
        preview: bool = False,
    ) -> Notice:
        """The notice one recipient gets (a group: the community's default language, buttons as deep links)."""
        group = recipient.chat_id < 0
        locale = recipient.locale or "zh_Hans"
        context = {
            "id": campaign.id,
            "body": campaign.body,
            "template": campaign.template,
            "facts": facts,
            "track": campaign.track,
            "community": community.name,
            "urgent": campaign.urgent,
            "preview": preview,
        }
        return Notice(
            recipient.chat_id,
            TEMPLATE,
            context,
            locale,
            photo=campaign.photo,
            choices=_choices(campaign, community, group),
            key=None if preview else f"cn:{campaign.id}:{recipient.chat_id}",
            priority=Priority.REPLY if preview else Priority.BULK,
            paid=campaign.paid and not preview,
        )

    async def _placeholders(self, campaign: Campaign, community: Community, now: datetime) -> dict[str, Any]:
        """The figures a library notice (a weekly digest) shows, computed once when it is sent."""
        local = now.astimezone(self.zone(community))
        facts: dict[str, Any] = {"date": local.date().isoformat(), "weekday": local.isoweekday()}
        if campaign.template is not None and self._facts is not None:
            facts |= await self._facts(community, now)
        return facts

    # ---- helpers -------------------------------------------------------------------------------------

    async def _organiser(
        self, uow: UnitOfWork, telegram_id: int, community_id: int, action: str, *, audit: bool = True
    ) -> Resident:
        return await organiser_of(uow, self._clock(), telegram_id, community_id, action, audit=audit)

    async def _community(self, uow: UnitOfWork, community_id: int) -> Community:
        return await community_by_id(uow, community_id)

    async def _resident(self, uow: UnitOfWork, telegram_id: int) -> Resident:
        resident = await uow.residents.get_by_telegram_id(telegram_id)
        if resident is None or not resident.has_consent:
            raise NotFound(what="resident")
        return resident

    async def _locale(self, uow: UnitOfWork, chat_id: int) -> str:
        person = await uow.residents.get_by_telegram_id(chat_id) if chat_id > 0 else None
        return person.locale if person is not None else "zh_Hans"

    async def _overview(self, uow: UnitOfWork, campaign: Campaign) -> Overview:
        community = await self._community(uow, campaign.community_id)
        return Overview(campaign, await current_counts(uow, campaign), community.name)


async def current_counts(uow: UnitOfWork, campaign: Campaign) -> Counts:
    """Live counts of its deliveries while a campaign sends; the counts kept on it otherwise (its outbox rows are
    purged a week after they are sent)."""
    if campaign.status is CampaignStatus.SENDING:
        return await uow.campaigns.deliveries(campaign.id)
    return campaign.counts


def _choices(campaign: Campaign, community: Community, group: bool) -> tuple[tuple[Choice, ...], ...]:
    rows: list[tuple[Choice, ...]] = []
    opens_bot = False
    for button in campaign.buttons:
        if button.kind is ButtonKind.URL:
            rows.append((Choice("plain", url=button.value, label_context={"text": button.label}),))
        elif group:
            opens_bot = True  # a tap in a group would act for whoever taps: open the bot in private instead
        elif button.kind is ButtonKind.QUIZ:
            rows.append((Choice("notices.btn.quiz", OPEN_QUIZ, (button.value,), {"track": button.value}),))
        elif button.kind is ButtonKind.REWARDS:
            rows.append((Choice("notices.btn.rewards", OPEN_REWARDS),))
        elif button.kind is ButtonKind.REPORT:
            rows.append((Choice("notices.btn.report", OPEN_REPORT),))
        elif button.kind is ButtonKind.ACTIVITY:
            rows.append((Choice("notices.btn.activity", OPEN_ACTIVITY, (int(button.value),), {"title": button.label}),))
    if opens_bot:
        rows.append((Choice("notices.btn.open_bot", start=make_deep_link(community.code)),))
    return tuple(rows)


def _meant_for(campaign: Campaign, resident: Resident, prefs: Preferences) -> bool:
    audience = campaign.audience
    if audience.kind is AudienceKind.BUILDINGS:
        return resident.building_id in audience.buildings
    if audience.kind is AudienceKind.TRACK:
        return audience.track in prefs.tracks
    if audience.kind is AudienceKind.ROLE:
        return audience.role is not None and resident.has_role(audience.role, campaign.community_id)
    return True


def _seconds(campaign: Campaign, now: datetime) -> int:
    return int((now - (campaign.started_at or now)).total_seconds())
