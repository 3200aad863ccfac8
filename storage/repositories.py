"""Repositories: translate between rows and domain objects. They flush, never commit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.exc import NoResultFound
from sqlalchemy.ext.asyncio import AsyncSession

from bot.domain.audit import AuditEntry, AuditQuery
from bot.domain.erasure import Erasure
from bot.domain.residents import Building, Community, Resident
from bot.domain.roles import Role, RoleGrant
from storage.campaign_models import CampaignRow
from storage.job_models import JobRow
from storage.messaging_models import InboxRow, OutboxRow
from storage.models import (
    AuditLogRow,
    BuildingRow,
    CacheRevRow,
    CommunityRow,
    DialogStateRow,
    GroupChatRow,
    ResidentRow,
    RoleGrantRow,
)
from storage.points_models import PointsAccountRow, PointsEntryRow, RedemptionRow, RewardRow
from storage.proposal_models import ProposalExpenseRow, ProposalMilestoneRow, ProposalRow, ProposalSettingRow
from storage.quiz_models import GroupQuizAnswerRow, GroupQuizRow, QuizAnswerRow
from storage.report_models import ReportFollowerRow, ReportRow
from storage.revisions import (
    COMMUNITIES,
    COMMUNITY_TABLES,
    RESIDENT_TABLES,
    Miss,
    RevCache,
    engine_cache,
    known_revision,
    remember_revision,
    resident_key,
)
from storage.volunteer_models import (
    ActivityRow,
    BookingRow,
    CertificateRow,
    ShiftRow,
    VolunteerProfileRow,
)

_RESIDENT_FIELDS = {
    "telegram_id",
    "locale",
    "display_name",
    "community_id",
    "building_id",
    "consent_version",
    "consent_at",
    "last_seen_at",
    "unreachable_at",
    "deleted_at",
}


def _resident(row: ResidentRow) -> Resident:
    return Resident(
        id=row.id,
        telegram_id=row.telegram_id,
        locale=row.locale,
        display_name=row.display_name,
        community_id=row.community_id,
        building_id=row.building_id,
        consent_version=row.consent_version,
        consent_at=row.consent_at,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        unreachable_at=row.unreachable_at,
        roles=frozenset(RoleGrant(Role(g.role), g.community_id) for g in row.roles),
    )


RESIDENTS_CACHED = 50_000  # profiles kept per process (a few hundred bytes each)
RESIDENT_T: Table = ResidentRow.__table__  # type: ignore[assignment]
GRANT_T: Table = RoleGrantRow.__table__  # type: ignore[assignment]
COMMUNITY_T: Table = CommunityRow.__table__  # type: ignore[assignment]
BUILDING_T: Table = BuildingRow.__table__  # type: ignore[assignment]
CACHE_REV_T: Table = CacheRevRow.__table__  # type: ignore[assignment]
_PROFILE = [RESIDENT_T.c[name] for name in ("id", *sorted(_RESIDENT_FIELDS - {"deleted_at"}), "created_at", "rev")]
# Built once: a resident with roles and revision (one row per role grant), communities with buildings and revision.
_PROFILE_QUERY = (
    select(*_PROFILE, GRANT_T.c.role, GRANT_T.c.community_id.label("grant_community"))
    .select_from(RESIDENT_T.outerjoin(GRANT_T, GRANT_T.c.resident_id == RESIDENT_T.c.id))
    .where(RESIDENT_T.c.telegram_id == bindparam("telegram_id"))
)
_COMMUNITIES_REV = select(CACHE_REV_T.c.rev).where(CACHE_REV_T.c.name == COMMUNITIES[0])
_COMMUNITIES_QUERY = (
    select(
        COMMUNITY_T.c.id,
        COMMUNITY_T.c.code,
        COMMUNITY_T.c.name,
        COMMUNITY_T.c.timezone,
        BUILDING_T.c.id.label("building_id"),
        BUILDING_T.c.code.label("building_code"),
        BUILDING_T.c.name.label("building_name"),
        _COMMUNITIES_REV.scalar_subquery().label("rev"),
    )
    .select_from(COMMUNITY_T.outerjoin(BUILDING_T, BUILDING_T.c.community_id == COMMUNITY_T.c.id))
    .order_by(COMMUNITY_T.c.id, BUILDING_T.c.id)
)


def _community(row: CommunityRow) -> Community:
    buildings = tuple(Building(b.id, b.code, b.name) for b in row.buildings)
    return Community(row.id, row.code, row.name, buildings, row.timezone)


def _resident_cache() -> RevCache[int, Resident | None]:
    return RevCache(RESIDENTS_CACHED)


def _community_cache() -> RevCache[str, tuple[Community, ...]]:
    return RevCache(1)


class SqlResidentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get_by_telegram_id(self, telegram_id: int, *, for_update: bool = False) -> Resident | None:
        """The resident with this Telegram id. A plain read comes from the process's cache when the update read
        this resident's revision at its start and the entry was read under the same one (storage/revisions.py);
        a read ``for_update`` (writers) always goes to the database and locks the row."""
        if for_update:
            # PostgreSQL cannot lock the nullable side of an outer join: roles come by the relationship's selectin.
            query = select(ResidentRow).where(ResidentRow.telegram_id == telegram_id).with_for_update()
            row = (await self._s.scalars(query)).one_or_none()
            return _resident(row) if row else None
        cache: RevCache[int, Resident | None] = engine_cache(self._s, "residents", _resident_cache)
        known, rev = known_revision(self._s, resident_key(telegram_id), RESIDENT_TABLES)
        if known:
            cached = cache.get(telegram_id, rev)
            if not isinstance(cached, Miss):
                return cached
        resident, rev = await self._profile(telegram_id)
        cache.put(telegram_id, rev, resident)
        return resident

    async def _profile(self, telegram_id: int) -> tuple[Resident | None, int | None]:
        """The resident with roles and its revision, in one statement (one row per role grant)."""
        rows = (await self._s.execute(_PROFILE_QUERY, {"telegram_id": telegram_id})).all()
        if not rows:
            return None, None
        first = rows[0]
        roles = frozenset(RoleGrant(Role(r.role), r.grant_community) for r in rows if r.role is not None)
        resident = Resident(
            id=first.id,
            telegram_id=first.telegram_id,
            locale=first.locale,
            display_name=first.display_name,
            community_id=first.community_id,
            building_id=first.building_id,
            consent_version=first.consent_version,
            consent_at=first.consent_at,
            created_at=first.created_at,
            last_seen_at=first.last_seen_at,
            unreachable_at=first.unreachable_at,
            roles=roles,
        )
        return resident, first.rev

    async def get(self, resident_id: int) -> Resident | None:
        row = await self._s.get(ResidentRow, resident_id)
        return _resident(row) if row else None

    async def add(self, telegram_id: int, locale: str, now: datetime) -> Resident:
        row = ResidentRow(telegram_id=telegram_id, locale=locale, created_at=now, roles=[])
        self._s.add(row)
        await self._s.flush()
        return _resident(row)

    async def update(self, resident_id: int, **fields: Any) -> None:
        unknown = set(fields) - _RESIDENT_FIELDS
        if unknown:
            raise ValueError(f"not resident fields: {sorted(unknown)}")
        # One UPDATE, not a load (the row and, by selectin, its roles) and a flush: this runs on the first update of
        # every resident's hour (last_seen_at), i.e. on nearly every answer of a group quiz burst. Objects of this
        # session that hold the row are brought up to date (synchronize_session's default).
        result = await self._s.execute(update(ResidentRow).where(ResidentRow.id == resident_id).values(**fields))
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            raise NoResultFound(f"no resident {resident_id}")

    async def grant(self, resident_id: int, role: Role, community_id: int | None) -> bool:
        row = await self._s.get_one(ResidentRow, resident_id)
        if any(g.role == role.value and g.community_id == community_id for g in row.roles):
            return False
        row.roles.append(RoleGrantRow(role=role.value, community_id=community_id))
        await self._s.flush()
        return True

    async def revoke(self, resident_id: int, role: Role, community_id: int | None) -> bool:
        result = await self._s.execute(
            delete(RoleGrantRow).where(
                RoleGrantRow.resident_id == resident_id,
                RoleGrantRow.role == role.value,
                RoleGrantRow.community_id.is_(None)
                if community_id is None
                else RoleGrantRow.community_id == community_id,
            )
        )
        self._s.expire_all()
        return bool(getattr(result, "rowcount", 0))

    async def revoke_all(self, resident_id: int) -> None:
        await self._s.execute(delete(RoleGrantRow).where(RoleGrantRow.resident_id == resident_id))
        self._s.expire_all()

    async def with_role(self, role: Role, community_id: int) -> list[Resident]:
        roles = {role.value, Role.ORGANISER.value} if role == Role.GRID_WORKER else {role.value}
        query = (
            select(ResidentRow)
            .join(RoleGrantRow)
            .where(
                RoleGrantRow.role.in_(roles),
                (RoleGrantRow.community_id == community_id) | RoleGrantRow.community_id.is_(None),
                ResidentRow.telegram_id.is_not(None),
            )
            .distinct()
            .order_by(ResidentRow.id)
        )
        return [_resident(r) for r in (await self._s.scalars(query)).all()]

    # ---- personal data: /mydata and /deleteme ---------------------------------------------------------------

    async def records(self, resident_id: int, latest: int) -> dict[str, Any]:
        """Everything besides the profile that is kept about a resident: a count of each kind and the ``latest``
        newest items (reports, +1s, points entries, redemptions, quiz answers in private rounds and in groups)."""
        accounts = select(PointsAccountRow.id).where(PointsAccountRow.resident_id == resident_id)
        mine = ReportRow.reporter_id == resident_id
        entries = PointsEntryRow.account_id.in_(accounts)
        redeemed = RedemptionRow.account_id.in_(accounts)
        private = QuizAnswerRow.resident_id == resident_id
        in_groups = GroupQuizAnswerRow.resident_id == resident_id

        async def count(table: Any, where: Any) -> int:
            return int(await self._s.scalar(select(func.count()).select_from(table).where(where)) or 0)

        reports = await self._s.execute(
            select(ReportRow.ticket, ReportRow.submitted_at, ReportRow.status, ReportRow.category)
            .where(mine)
            .order_by(ReportRow.id.desc())
            .limit(latest)
        )
        points = await self._s.execute(
            select(PointsEntryRow.at, PointsEntryRow.amount, PointsEntryRow.reason)
            .where(entries)
            .order_by(PointsEntryRow.id.desc())
            .limit(latest)
        )
        redemptions = await self._s.execute(
            select(
                RedemptionRow.created_at, RedemptionRow.code, RedemptionRow.status, RedemptionRow.cost, RewardRow.name
            )
            .join(RewardRow, RewardRow.id == RedemptionRow.reward_id)
            .where(redeemed)
            .order_by(RedemptionRow.id.desc())
            .limit(latest)
        )
        answers = [
            *(
                await self._s.execute(
                    select(QuizAnswerRow.answered_at, QuizAnswerRow.track, QuizAnswerRow.correct, QuizAnswerRow.points)
                    .where(private)
                    .order_by(QuizAnswerRow.id.desc())
                    .limit(latest)
                )
            ).all(),
            *(
                await self._s.execute(
                    select(
                        GroupQuizAnswerRow.answered_at,
                        GroupQuizRow.track,
                        GroupQuizAnswerRow.correct,
                        GroupQuizAnswerRow.points,
                    )
                    .join(GroupQuizRow, GroupQuizRow.id == GroupQuizAnswerRow.quiz_id)
                    .where(in_groups)
                    .order_by(GroupQuizAnswerRow.id.desc())
                    .limit(latest)
                )
            ).all(),
        ]
        answers.sort(key=lambda a: a[0], reverse=True)
        balance = await self._s.scalar(
            select(func.coalesce(func.sum(PointsAccountRow.balance), 0)).where(
                PointsAccountRow.resident_id == resident_id
            )
        )
        return {
            "counts": {
                "reports": await count(ReportRow, mine),
                "followed": await count(ReportFollowerRow, ReportFollowerRow.resident_id == resident_id),
                "points": await count(PointsEntryRow, entries),
                "redemptions": await count(RedemptionRow, redeemed),
                "quiz": await count(QuizAnswerRow, private) + await count(GroupQuizAnswerRow, in_groups),
            },
            "balance": int(balance or 0),
            "reports": [{"ticket": t, "at": at, "status": st, "category": c} for t, at, st, c in reports.all()],
            "points": [{"at": at, "amount": n, "reason": r} for at, n, r in points.all()],
            "redemptions": [
                {"at": at, "code": code, "status": st, "cost": cost, "reward": name}
                for at, code, st, cost, name in redemptions.all()
            ],
            "quiz": [{"at": at, "track": t, "correct": ok, "points": n} for at, t, ok, n in answers[:latest]],
        }

    async def erase_traces(self, erasure: Erasure) -> list[str]:
        """/deleteme, everywhere outside the resident row, the reports and the audit log (see their repositories):

        - messages: the updates they sent (already handled) are emptied; the bot's messages to them are deleted,
          pending or sent; stored copies of other messages (a staff card with their name or report text, an
          update naming their id) have the mentions replaced;
        - their dialog states go; staff columns holding their id (who verified a redemption, who granted points,
          who ran a group quiz, where a notice's progress went, who reviewed or decided a proposal) are emptied;
          proposals they wrote are no longer linked to them;
        - points entries keep amounts and reasons; keys and notes that name them are rewritten;
        - timers about them alone (a points-expiry reminder) go; others have the mentions replaced.

        Returns the texts held in their dialog states (a draft's photo keys among them) for the caller to clean up.
        """
        tid = erasure.telegram_id
        s = self._s
        await s.execute(
            update(InboxRow)
            .where(InboxRow.user_id == tid, InboxRow.status != "pending")
            .values(payload={"erased": True}, user_id=None)
        )
        mentioning = cast(InboxRow.payload, String).like(f"%{tid}%")
        for row in (await s.scalars(select(InboxRow).where(InboxRow.status != "pending", mentioning))).all():
            row.payload = erasure.scrub(row.payload)
        await s.execute(delete(OutboxRow).where(OutboxRow.chat_id == tid))
        # Campaign copies hold the organiser's notice, not what anyone wrote about the person.
        others = select(OutboxRow.id, OutboxRow.payload).where(OutboxRow.campaign_id.is_(None))
        for row_id, payload in (await s.execute(others)).all():
            if erasure.mentions(payload):
                await s.execute(update(OutboxRow).where(OutboxRow.id == row_id).values(payload=erasure.scrub(payload)))
        drafts = (await s.scalars(select(DialogStateRow.data).where(DialogStateRow.user_id == tid))).all()
        await s.execute(delete(DialogStateRow).where(DialogStateRow.user_id == tid))
        await s.execute(update(RedemptionRow).where(RedemptionRow.verified_by == tid).values(verified_by=None))
        await s.execute(
            update(GroupQuizRow).where(GroupQuizRow.organiser_telegram_id == tid).values(organiser_telegram_id=None)
        )
        await s.execute(update(CampaignRow).where(CampaignRow.progress_chat_id == tid).values(progress_chat_id=None))
        for column in (ActivityRow.created_by, ShiftRow.code_chat_id, BookingRow.approved_by,
                       VolunteerProfileRow.decided_by, CertificateRow.issued_by, ProposalRow.reviewed_by,
                       ProposalRow.decided_by, ProposalMilestoneRow.by, ProposalExpenseRow.by,
                       ProposalSettingRow.updated_by):  # fmt: skip
            await s.execute(update(column.class_).where(column == tid).values({column.key: None}))
        # Their proposals stay the community's record (supported, voted on, paid for), no longer linked to them.
        await s.execute(update(ProposalRow).where(ProposalRow.author_id == erasure.resident_id).values(author_id=None))
        accounts = select(PointsAccountRow.id).where(PointsAccountRow.resident_id == erasure.resident_id)
        touched = or_(
            PointsEntryRow.actor_telegram_id == tid,
            PointsEntryRow.idempotency_key.like(f"%{tid}%"),
            PointsEntryRow.account_id.in_(accounts) & PointsEntryRow.note.is_not(None),
        )
        for entry in (await s.scalars(select(PointsEntryRow).where(touched))).all():
            if entry.actor_telegram_id == tid:
                entry.actor_telegram_id = None
            entry.idempotency_key = erasure.text(entry.idempotency_key)
            entry.note = erasure.text(entry.note) if entry.note else entry.note
        jobs = or_(JobRow.key.like(f"%{tid}%"), cast(JobRow.payload, String).like(f"%{tid}%"))
        for job in (await s.scalars(select(JobRow).where(jobs))).all():
            if job.done_at is None and job.payload.get("telegram_id") == tid:
                await s.delete(job)  # a reminder to them alone
                continue
            job.key = erasure.text(job.key) if job.key else job.key
            job.payload = erasure.scrub(job.payload)
        await s.flush()
        return [text for data in drafts for text in _strings(data)]


class SqlCommunityRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def list(self) -> list[Community]:
        """All communities with their buildings: read on nearly every update, changed a few times a year, so kept
        by the process and used while the ``communities`` revision is the one it was read under."""
        cache: RevCache[str, tuple[Community, ...]] = engine_cache(self._s, "communities", _community_cache)
        known, rev = known_revision(self._s, COMMUNITIES, COMMUNITY_TABLES)
        if not known:  # not read at the update's start (or written since): ask for the revision alone
            rev = await self._s.scalar(_COMMUNITIES_REV)
            remember_revision(self._s, COMMUNITIES, rev, COMMUNITY_TABLES)
        if rev is not None:
            cached = cache.get("all", rev)
            if not isinstance(cached, Miss):
                return list(cached)
        communities, rev = await self._all()
        if rev is not None:  # no revision row (an emptied database): nothing to check an entry against
            cache.put("all", rev, communities)
        return list(communities)

    async def _all(self) -> tuple[tuple[Community, ...], int | None]:
        """Communities, buildings and the revision in one statement (so they belong together)."""
        rows = (await self._s.execute(_COMMUNITIES_QUERY)).all()
        found: dict[int, tuple[Any, list[Building]]] = {}
        for row in rows:
            _, buildings = found.setdefault(row.id, (row, []))
            if row.building_id is not None:
                buildings.append(Building(row.building_id, row.building_code, row.building_name))
        communities = tuple(Community(r.id, r.code, r.name, tuple(b), r.timezone) for r, b in found.values())
        return communities, (rows[0].rev if rows else await self._s.scalar(_COMMUNITIES_REV))

    async def get(self, community_id: int) -> Community | None:
        return next((c for c in await self.list() if c.id == community_id), None)

    async def get_by_code(self, code: str) -> Community | None:
        row = (await self._s.scalars(select(CommunityRow).where(CommunityRow.code == code))).one_or_none()
        return _community(row) if row else None

    async def add(self, code: str, name: str) -> Community:
        row = CommunityRow(code=code, name=name, buildings=[])
        self._s.add(row)
        await self._s.flush()
        return _community(row)

    async def add_building(self, community_id: int, code: str, name: str) -> Building:
        row = BuildingRow(community_id=community_id, code=code, name=name)
        self._s.add(row)
        await self._s.flush()
        building = Building(row.id, row.code, row.name)
        # The community's building list was loaded before; reload it on next access.
        self._s.expire_all()
        return building


class SqlGroupChatRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def get_community_id(self, chat_id: int) -> int | None:
        row = await self._s.get(GroupChatRow, chat_id)
        return row.community_id if row else None

    async def link(self, chat_id: int, community_id: int, title: str, purpose: str) -> None:
        row = await self._s.get(GroupChatRow, chat_id)
        if row is None:
            self._s.add(GroupChatRow(chat_id=chat_id, community_id=community_id, title=title, purpose=purpose))
        else:
            row.community_id, row.title, row.purpose = community_id, title, purpose
        await self._s.flush()


class SqlAuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._s = session

    async def add(
        self, at: datetime, actor_telegram_id: int | None, action: str, allowed: bool, details: dict[str, Any]
    ) -> None:
        self._s.add(
            AuditLogRow(at=at, actor_telegram_id=actor_telegram_id, action=action, allowed=allowed, details=details)
        )
        await self._s.flush()

    async def pseudonymise(self, erasure: Erasure) -> int:
        """/deleteme: audit rows keep what was done and when; the person's Telegram id becomes the pseudonym (the
        actor column is emptied and ``details.actor`` names the pseudonym), their name and words are replaced.
        Returns how many rows changed."""
        tid = erasure.telegram_id
        query = select(AuditLogRow).where(
            or_(AuditLogRow.actor_telegram_id == tid, cast(AuditLogRow.details, String).like(f"%{tid}%"))
        )
        changed = 0
        for row in (await self._s.scalars(query)).all():
            details = erasure.scrub(dict(row.details or {}))
            if row.actor_telegram_id == tid:
                row.actor_telegram_id = None
                details["actor"] = erasure.pseudonym
            if details != row.details:
                row.details = details
                changed += 1
        await self._s.flush()
        return changed

    async def search(self, query: AuditQuery, offset: int, limit: int) -> tuple[list[AuditEntry], int]:
        """One page of the lines ``query`` selects, newest first, and how many there are in all."""
        where = _audit_where(query)
        total = int(await self._s.scalar(select(func.count()).select_from(AuditLogRow).where(*where)) or 0)
        rows = await self._s.scalars(
            select(AuditLogRow).where(*where).order_by(AuditLogRow.id.desc()).offset(offset).limit(limit)
        )
        return [_audit_entry(r) for r in rows.all()], total

    async def choices(self, query: AuditQuery, limit: int = 200) -> tuple[list[str], list[int]]:
        """The actions and the people (telegram ids) found in the lines ``query`` may see, for the filters."""
        where = _audit_where(AuditQuery(query.communities))
        actions = await self._s.scalars(
            select(AuditLogRow.action).where(*where).group_by(AuditLogRow.action).order_by(AuditLogRow.action)
        )
        actors = await self._s.scalars(
            select(AuditLogRow.actor_telegram_id)
            .where(*where, AuditLogRow.actor_telegram_id.is_not(None))
            .group_by(AuditLogRow.actor_telegram_id)
            .order_by(func.max(AuditLogRow.id).desc())
            .limit(limit)
        )
        return list(actions.all())[:limit], [int(a) for a in actors.all() if a is not None]

    async def recent(self, limit: int = 50) -> list[AuditLogRow]:
        """Newest entries first (for operators and tests)."""
        rows = await self._s.scalars(select(AuditLogRow).order_by(AuditLogRow.id.desc()).limit(limit))
        return list(rows.all())


def _audit_entry(row: AuditLogRow) -> AuditEntry:
    return AuditEntry(row.id, row.at, row.actor_telegram_id, row.action, row.allowed, dict(row.details or {}))


def _audit_where(query: AuditQuery) -> list[Any]:
    """Lines of people who live in or hold a role in ``query.communities`` (every line when None), then the
    person and action filters."""
    where: list[Any] = []
    if query.communities is not None:
        ids = sorted(query.communities)
        members = select(ResidentRow.telegram_id).where(ResidentRow.community_id.in_(ids))
        staff = (
            select(ResidentRow.telegram_id)
            .join(RoleGrantRow, RoleGrantRow.resident_id == ResidentRow.id)
            .where(RoleGrantRow.community_id.in_(ids))
        )
        where.append(or_(AuditLogRow.actor_telegram_id.in_(members), AuditLogRow.actor_telegram_id.in_(staff)))
    if query.actor is not None:
        where.append(AuditLogRow.actor_telegram_id == query.actor)
    if query.action:
        where.append(AuditLogRow.action.startswith(query.action, autoescape=True))
    return where


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []
