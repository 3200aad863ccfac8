"""Use cases around a resident: onboarding, consent, settings, their data and its deletion."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.erasure import REDACTED, Erasure
from bot.domain.errors import InvalidInput, NeedsConsent, NotFound
from bot.domain.residents import CONSENT_VERSION, LOCALES, Community, Resident
from bot.domain.rewards import show_code
from bot.services.files import PHOTO_FOLDER, PhotoIntake
from bot.services.ports import Clock, UnitOfWorkFactory

log = logging.getLogger(__name__)

# last_seen is for activity figures, not a log: writing it on every update would turn reads into writes.
SEEN_RESOLUTION = timedelta(hours=1)
# /mydata lists this many of the newest items of each kind, and counts all of them.
LATEST = 10


class ResidentService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        timezone: str = "Asia/Shanghai",
        photos: PhotoIntake | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._default_zone = timezone
        self._photos = photos

    async def profile(self, telegram_id: int) -> Resident | None:
        """The resident with this Telegram id, noting when they were last seen."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            now = self._clock()
            if resident and resident.has_consent and _stale(resident, now):
                await uow.residents.update(resident.id, last_seen_at=now, unreachable_at=None)
                await uow.commit()
            return resident

    async def set_locale(self, telegram_id: int, locale: str) -> Resident:
        """Remember the language; before consent this is the only thing stored besides the Telegram id."""
        if locale not in LOCALES:
            raise InvalidInput(locale=locale)
        async with self._uow() as uow:
            resident = await self._get_or_add(uow, telegram_id, locale)
            await uow.residents.update(resident.id, locale=locale)
            await uow.commit()
        return await self._require(telegram_id)

    async def give_consent(self, telegram_id: int, display_name: str, locale: str) -> Resident:
        """Record explicit consent (version and time) and the display name Telegram gave us."""
        async with self._uow() as uow:
            resident = await self._get_or_add(uow, telegram_id, locale)
            now = self._clock()
            await uow.residents.update(
                resident.id,
                consent_version=CONSENT_VERSION,
                consent_at=now,
                display_name=display_name[:64] or None,
                last_seen_at=now,
            )
            await uow.commit()
        return await self._require(telegram_id)

    async def join(self, telegram_id: int, community_id: int, building_id: int | None) -> Resident:
        """Set the resident's community and building (consent required)."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id, for_update=True)
            if resident is None or not resident.has_consent:
                raise NeedsConsent()
            community = await uow.communities.get(community_id)
            if community is None:
                raise NotFound(what="community")
            if building_id is not None and building_id not in {b.id for b in community.buildings}:
                raise NotFound(what="building")
            await uow.residents.update(resident.id, community_id=community_id, building_id=building_id)
            await uow.commit()
        return await self._require(telegram_id)

    async def my_data(self, telegram_id: int) -> dict[str, Any]:
        """Everything stored about this person, for /mydata (PIPL right of access): the profile, notice settings,
        and a count of their reports, +1s, points entries, redemptions and quiz answers with the newest
        :data:`LATEST` of each. Times are in the community's zone (``zone``), as everywhere a person reads one."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if resident is None:
                return {}
            community = await uow.communities.get(resident.community_id) if resident.community_id else None
            notices = await uow.campaigns.preferences(resident.id)
            records = await uow.residents.records(resident.id, LATEST)
            volunteer = await uow.volunteers.profile(resident.id)
            service = await uow.volunteers.record(resident.id) if volunteer else []
            surveys = {
                "answered": len(await uow.surveys.answered_by(resident.id)),
                "named": await uow.surveys.named_responses(resident.id),
                "in_progress": len(await uow.surveys.in_progress(resident.id)),
            }
            written, supported, voted = await uow.proposals.counts_of(resident.id)
            proposals = [(p.title, p.status.value) for p in await uow.proposals.by_author(resident.id, LATEST)]
        zone = ZoneInfo(community.timezone if community and community.timezone else self._default_zone)
        data = {k: _local(v, zone) for k, v in asdict(resident).items()}
        data["zone"] = zone.key
        data["latest"] = LATEST
        data["seen_resolution_minutes"] = int(SEEN_RESOLUTION.total_seconds() // 60)
        for kind in ("reports", "points", "redemptions", "quiz"):
            records[kind] = [{k: _local(v, zone) for k, v in item.items()} for item in records[kind]]
        for item in records["redemptions"]:
            item["code"] = show_code(item["code"])
        data["records"] = records
        data["volunteer"] = (
            {
                "status": volunteer.status.value,
                "skills": volunteer.skills,
                "availability": volunteer.availability,
                "shifts": len(service),
                "hours": round(sum(line.minutes for line in service) / 60, 1),
            }
            if volunteer
            else None
        )
        data["surveys"] = surveys
        data["proposals"] = {
            "written": written,
            "supported": supported,
            "voted": voted,
            "latest": [{"title": title, "status": status} for title, status in proposals],
        }
        data["notices"] = {
            "on": not notices.notices_off,
            "quiet": notices.quiet.label() if notices.quiet else None,
            "tracks": sorted(notices.tracks),
        }
        data["roles"] = sorted(
            f"{g.role.value}@{g.community_id}" if g.community_id else g.role.value for g in resident.roles
        )
        data["community"] = community.name if community else None
        data["building"] = _building_name(community, resident.building_id)
        return data

    async def delete(self, telegram_id: int) -> bool:
        """Erase personal data (PIPL); what stays is anonymous, so ledgers and report history keep their totals.

        The resident row stays without Telegram id, name, building, roles or consent. Their reports stay in the
        ledger, anonymous, with their words replaced by :data:`REDACTED`; their photos (and those of a draft they
        never sent) are deleted from the file store. Every other record that named them (audit rows, stored
        messages, points entries, timers) keeps what happened, with the Telegram id replaced by ``deleted:<resident
        id>`` and the name and words replaced. See docs/architecture.md, "Personal data".
        """
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id, for_update=True)
            if resident is None:
                return False
            names = (resident.display_name,) if resident.display_name else ()
            texts, photos = await uow.reports.anonymise_reporter(resident.id, names, REDACTED)
            erasure = Erasure(resident.id, telegram_id, names, tuple(t for t in texts if t))
            await uow.residents.revoke_all(resident.id)
            await uow.quiz.forget_votes(telegram_id)
            await uow.campaigns.forget_preferences(resident.id)
            await uow.surveys.forget(resident.id, REDACTED)  # has-answered marks stay: they name nobody any more
            # Volunteer service: places left (the waitlist was offered them before, see VolunteerService.leave), the
            # profile with its skills forgotten; hours stay on the shifts' records, certificates keep their number
            # and hours but no name.
            await uow.volunteers.withdraw(resident.id, self._clock())
            await uow.volunteers.forget_profile(resident.id)
            await uow.volunteers.anonymise_certificates(resident.id, REDACTED)
            drafts = await uow.residents.erase_traces(erasure)
            photos += [text for text in drafts if text.startswith(f"{PHOTO_FOLDER}/")]  # a report never sent
            await uow.audit.pseudonymise(erasure)
            await uow.residents.update(
                resident.id,
                telegram_id=None,
                display_name=None,
                building_id=None,
                consent_version=None,
                consent_at=None,
                last_seen_at=None,
                unreachable_at=None,
                deleted_at=self._clock(),
            )
            await uow.commit()
            # Only files nothing refers to any more: the store is content-addressed, so a neighbour's identical
            # photo is the same file. Files are not transactional: they go once the erasure is written; should the
            # update still fail after this, the person is told so and asks again, which finds the same photos.
            in_use = await uow.reports.photo_keys_in_use(self._clock(), "") if photos else set()
        gone = [key for key in dict.fromkeys(photos) if key not in in_use]
        if gone and self._photos is not None:
            removed = await self._photos.remove(gone)
            log.info("deletion of resident %s: %d of %d photos removed", resident.id, removed, len(gone))
        return True

    async def mark_unreachable(self, telegram_id: int) -> None:
        """The user blocked the bot (or was deactivated): stop sending until they write again."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
            if resident is not None and resident.unreachable_at is None:
                await uow.residents.update(resident.id, unreachable_at=self._clock())
                await uow.commit()

    async def _require(self, telegram_id: int) -> Resident:
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(telegram_id)
        if resident is None:
            raise NotFound(what="resident")
        return resident

    async def _get_or_add(self, uow: Any, telegram_id: int, locale: str) -> Resident:
        resident: Resident | None = await uow.residents.get_by_telegram_id(telegram_id, for_update=True)
        if resident is None:
            resident = await uow.residents.add(telegram_id, locale, self._clock())
        return resident


def _stale(resident: Resident, now: datetime) -> bool:
    seen = resident.last_seen_at
    return seen is None or resident.unreachable_at is not None or now - seen >= SEEN_RESOLUTION


def _local(value: Any, zone: ZoneInfo) -> Any:
    """A stored time (UTC) as the person should read it: in their community's zone."""
    return value.astimezone(zone) if isinstance(value, datetime) else value


def _building_name(community: Community | None, building_id: int | None) -> str | None:
    if community is None or building_id is None:
        return None
    return next((b.name for b in community.buildings if b.id == building_id), None)
