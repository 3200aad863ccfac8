"""The points ledger: awarding under rules and caps, manual grants and reversals, expiry, rankings, checks.

Every balance change goes through :func:`credit` or :func:`debit` in a transaction that first locked the
account, so the entry, its lots and the maintained balance always move together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo

from bot.domain.errors import DomainError, Forbidden, InvalidInput, NeedsConsent, NotFound
from bot.domain.points import (
    EARNED,
    Account,
    AwardResult,
    Entry,
    InsufficientPoints,
    Lot,
    Policy,
    Reason,
    Rule,
    Standing,
    apply_caps,
    consume,
    day_start,
    expired,
    expiring_soon,
    mask_name,
    month_start,
    week_start,
)
from bot.domain.quiz_figures import distinguish
from bot.domain.residents import Resident
from bot.domain.roles import Role
from bot.services.ports import Clock, Credit, LedgerLine, RedemptionLine, UnitOfWork, UnitOfWorkFactory

RECENT = 8
RANK_SIZE = 10
MAX_MANUAL = 10_000
FOUND = 8


@dataclass(frozen=True)
class PointsFigures:
    """Points of a community over a period: earned under the rules or granted by staff, and spent on rewards
    (less refunds of cancelled redemptions)."""

    issued: int
    redeemed: int


@dataclass(frozen=True)
class Overview:
    balance: int
    hidden: bool
    recent: list[Entry]
    expiring: list[Lot]
    tz: tzinfo

    def local(self, moment: datetime) -> datetime:
        """A stored (UTC) time in the community's timezone, for templates."""
        return moment.astimezone(self.tz)


@dataclass(frozen=True)
class Award:
    """One award of a batch (:meth:`PointsService.award_many_in`): as :meth:`PointsService.award` takes it."""

    resident_id: int
    reason: Reason
    key: str
    ref: str = ""
    units: int = 1


@dataclass(frozen=True)
class Rankings:
    period: str
    residents: list[Standing]
    buildings: list[Standing]
    mine: int


class UnknownResident(DomainError):
    """The person an organiser named is not a registered resident (of any community they serve)."""

    template = "points/unknown_resident"


@dataclass(frozen=True)
class Candidate:
    """A resident an organiser may give points to or take them from, as the organiser picks them."""

    telegram_id: int
    name: str | None
    building: str | None


async def credit(
    uow: UnitOfWork,
    account: Account,
    amount: int,
    reason: Reason,
    key: str,
    at: datetime,
    *,
    ref: str = "",
    expires_at: datetime | None = None,
    actor: int | None = None,
    note: str | None = None,
) -> None:
    """Add points to a locked account: an entry, a lot holding them, and the balance."""
    entry_id = await uow.points.add_entry(account.id, amount, reason, ref, key, at, actor, note)
    await uow.points.add_lot(account.id, entry_id, amount, expires_at)
    await uow.points.change_balance(account.id, amount)


async def debit(
    uow: UnitOfWork,
    account: Account,
    amount: int,
    reason: Reason,
    key: str,
    at: datetime,
    *,
    ref: str = "",
    actor: int | None = None,
    note: str | None = None,
) -> datetime | None:
    """Spend points of a locked account oldest first; returns the earliest expiry among the points spent."""
    if account.balance < amount:
        raise InsufficientPoints(balance=account.balance, cost=amount)
    lots = await uow.points.lots(account.id)
    takes = consume(lots, amount)
    if not await uow.points.change_balance(account.id, -amount):
        raise InsufficientPoints(balance=account.balance, cost=amount)
    await uow.points.take(takes)
    await uow.points.add_entry(account.id, -amount, reason, ref, key, at, actor, note)
    taken = {lot_id for lot_id, _ in takes}
    expiries = [lot.expires_at for lot in lots if lot.id in taken and lot.expires_at is not None]
    return min(expiries, default=None)


class PointsService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: Policy) -> None:
        self._uow = uow
        self._clock = clock
        self.policy = policy

    async def award(
        self,
        resident_id: int,
        reason: Reason,
        key: str,
        *,
        ref: str = "",
        units: int = 1,
        actor: int | None = None,
        rate: int | None = None,
    ) -> AwardResult:
        """The one way features give points: rules and caps apply; ``key`` makes a retry credit nothing.

        ``rate`` (points per unit) replaces the rule's points where the feature sets its own (a volunteer shift's
        points per hour); the rule's caps still apply."""
        async with self._uow() as uow:
            result = await self.award_in(uow, resident_id, reason, key, ref=ref, units=units, actor=actor, rate=rate)
            if result.credited > 0:
                await uow.commit()
        return result

    async def award_in(
        self,
        uow: UnitOfWork,
        resident_id: int,
        reason: Reason,
        key: str,
        *,
        ref: str = "",
        units: int = 1,
        actor: int | None = None,
        rate: int | None = None,
    ) -> AwardResult:
        """:meth:`award` inside the caller's transaction (the caller commits): a feature whose own change and the
        points must be one transaction (a volunteer's approved hours).

        Two statements as a rule: one locks the account and reads the resident's community, whether the key was
        used and the day's and week's earnings; the other writes entry, lot and balance."""
        if reason not in EARNED:
            raise ValueError(f"{reason} is not an earning reason")
        rule, now = self._rule(reason, rate), self._clock()
        full_key = f"{reason.value}:{key}"
        locked = await uow.points.lock_for_award(resident_id, full_key, reason, self._windows(rule, now))
        if locked is None:
            raise NeedsConsent()
        account, used, today, week = locked
        if used:
            return AwardResult(0, 0, account.balance, duplicate=True)
        grant = apply_caps(rule, units, today, week)
        balance = account.balance
        if grant.amount > 0:
            entry = Credit(account.id, grant.amount, reason, ref, full_key, now, self.policy.expires_at(now))
            credited = await uow.points.add_credit(entry, actor)
            if credited is None:  # the key was taken meanwhile (by another account's award): nothing written
                return AwardResult(0, 0, account.balance, duplicate=True)
            balance = credited
        return AwardResult(grant.amount, grant.requested, balance, grant.capped_by, grant.cap)

    async def award_many_in(self, uow: UnitOfWork, awards: Sequence[Award]) -> list[AwardResult | None]:
        """Many awards in the caller's transaction (the caller commits), each as :meth:`award` would make it:
        same rules, caps (counted across the batch too), idempotency keys and ledger rows. Accounts are locked in
        resident id order. The result of each award in order; None for a resident not registered (where
        :meth:`award` raises NeedsConsent). About six statements whatever the batch size."""
        if not awards:
            return []
        for award in awards:
            if award.reason not in EARNED:
                raise ValueError(f"{award.reason} is not an earning reason")
        accounts = await uow.points.lock_members([a.resident_id for a in awards])
        keys = [f"{a.reason.value}:{a.key}" for a in awards]
        used = await uow.points.taken_keys(keys)
        now, tz = self._clock(), self.policy.timezone
        capped = sorted({a.reason for a in awards if self._windows(self.policy.rule(a.reason), now)})
        ids = [account.id for account in accounts.values()]
        earned = await uow.points.earned_many(ids, capped, day_start(now, tz), week_start(now, tz)) if capped else {}
        balances = {account.id: account.balance for account in accounts.values()}
        expires = self.policy.expires_at(now)
        results: list[AwardResult | None] = []
        credits: list[Credit] = []
        for award, key in zip(awards, keys, strict=True):
            account = accounts.get(award.resident_id)
            if account is None:
                results.append(None)
                continue
            if key in used:
                results.append(AwardResult(0, 0, balances[account.id], duplicate=True))
                continue
            used.add(key)
            today, week = earned.get((account.id, award.reason), (0, 0))
            grant = apply_caps(self.policy.rule(award.reason), award.units, today, week)
            if grant.amount > 0:
                earned[(account.id, award.reason)] = (today + grant.amount, week + grant.amount)
                balances[account.id] += grant.amount
                credits.append(Credit(account.id, grant.amount, award.reason, award.ref, key, now, expires))
            results.append(AwardResult(grant.amount, grant.requested, balances[account.id], grant.capped_by, grant.cap))
        await uow.points.add_credits(credits)
        return results

    async def grant(self, actor: int, target: int, points: int, note: str, key: str) -> int:
        """An organiser gives points by hand (audited); returns the new balance."""
        return await self._manual(actor, target, points, note, key, Reason.MANUAL_GRANT)

    async def reverse(self, actor: int, target: int, points: int, note: str, key: str) -> int:
        """An organiser takes points back (audited); never below zero. Returns the new balance."""
        return await self._manual(actor, target, points, note, key, Reason.REVERSAL)

    async def person(self, actor: int, target: int) -> Candidate:
        """The resident ``target`` as the organiser ``actor`` (of their community) names them."""
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(target)
            if resident is None or resident.community_id is None or resident.consent_at is None:
                raise UnknownResident(target=target)
            await require_role(uow, actor, Role.ORGANISER, resident.community_id)
            community = await uow.communities.get(resident.community_id)
        buildings = {b.id: b.name for b in community.buildings} if community else {}
        building = buildings.get(resident.building_id) if resident.building_id else None
        return Candidate(target, resident.display_name, building)

    async def find(self, actor: int, text: str) -> list[Candidate]:
        """Residents of the organiser's community whose name contains ``text`` (at most ``FOUND``)."""
        async with self._uow() as uow:
            organiser = await member(uow, actor)
            community_id = community_of(organiser)
            await require_role(uow, actor, Role.ORGANISER, community_id)
            found = await uow.points.search_residents(community_id, text.strip()[:32], FOUND)
        return [Candidate(tid, name, building) for tid, name, building in found]

    async def overview(self, telegram_id: int) -> Overview:
        """Balance, latest entries and points expiring soon, for /points."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            account = await uow.points.account(resident.id, community_of(resident))
            if account is None:
                return Overview(0, False, [], [], self.policy.timezone)
            recent = await uow.points.recent(account.id, RECENT)
            lots = await uow.points.lots(account.id)
        soon = expiring_soon(lots, self._clock(), self.policy.reminder_days)
        return Overview(account.balance, account.hidden, recent, soon, self.policy.timezone)

    async def set_hidden(self, telegram_id: int, hidden: bool) -> Overview:
        """Opt out of (or back into) the rankings; returns the updated overview."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            account = await uow.points.lock_account(resident.id, community_of(resident))
            await uow.points.set_hidden(account.id, hidden)
            await uow.commit()
        return await self.overview(telegram_id)

    async def rankings(self, telegram_id: int, period: str) -> Rankings:
        """Top residents (opted-out ones hidden) and buildings of the sender's community, month or ever."""
        if period not in ("month", "all"):
            raise InvalidInput(field="period", value=period)
        since = month_start(self._clock(), self.policy.timezone) if period == "month" else None
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community_id = community_of(resident)
            account = await uow.points.account(resident.id, community_id)
            people = await uow.points.ranking(community_id, since, RANK_SIZE)
            buildings = await uow.points.building_ranking(community_id, since, RANK_SIZE)
        mine = account.id if account else None
        # 李** · 3号楼 and 李** · 2号楼 (a number where even the building is shared): told apart, nothing more shown
        shown = distinguish([(mask_name(name), building) for _, name, building, _ in people])
        residents = [Standing(s, pts, acc == mine) for s, (acc, _, _, pts) in zip(shown, people, strict=True)]
        return Rankings(period, residents, [Standing(n, p) for n, p in buildings], mine or 0)

    async def figures(self, community_code: str, since: datetime | None, until: datetime | None) -> PointsFigures:
        """Points issued and redeemed in a community over [since, until) (the dashboard)."""
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community", code=community_code)
            totals = await uow.points.totals(community.id, since, until)
        issued = sum(totals.get(r.value, 0) for r in (*EARNED, Reason.MANUAL_GRANT))
        redeemed = -(totals.get(Reason.REDEMPTION.value, 0) + totals.get(Reason.REFUND.value, 0))
        return PointsFigures(issued, redeemed)

    async def ledger(self, community_code: str, since: datetime | None, until: datetime | None) -> list[LedgerLine]:
        """Every ledger entry of the community's residents made in [since, until), oldest first, with the balance
        after it and its expiry (``sicheng export points`` and the dashboard's download)."""
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community", code=community_code)
            return await uow.points.ledger(community.id, since, until)

    async def redemption_ledger(
        self, community_code: str, since: datetime | None, until: datetime | None
    ) -> list[RedemptionLine]:
        """Every redemption in the community made in [since, until), oldest first, with its reward and the service
        point that verified it (``sicheng export redemptions`` and the dashboard's download)."""
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community", code=community_code)
            return await uow.rewards.ledger(community.id, since, until)

    async def building_ranking(self, community_id: int, period: str) -> list[Standing]:
        """文明楼栋: the buildings' ranking exactly as ``/rank`` shows it (this month, or ever)."""
        if period not in ("month", "all"):
            raise InvalidInput(field="period", value=period)
        since = month_start(self._clock(), self.policy.timezone) if period == "month" else None
        async with self._uow() as uow:
            buildings = await uow.points.building_ranking(community_id, since, RANK_SIZE)
        return [Standing(n, p) for n, p in buildings]

    async def expire_points(self, now: datetime | None = None) -> int:
        """Write expiry entries for lots past their date (the periodic job); returns points expired."""
        now = now or self._clock()
        async with self._uow() as uow:
            accounts = await uow.points.accounts_with_expired_lots(now)
        total = 0
        for account_id in accounts:
            total += await self._expire_account(account_id, now)
        return total

    async def expiring_reminders(self, now: datetime | None = None) -> list[tuple[int, int, datetime]]:
        """(telegram id, points, first expiry) of residents whose points expire within the reminder window."""
        now = now or self._clock()
        async with self._uow() as uow:
            return await uow.points.expiring(now, now + timedelta(days=self.policy.reminder_days))

    async def check(self) -> list[tuple[int, int, int, int]]:
        """Accounts whose balance is not the sum of entries and of lots: (account, balance, entries, lots)."""
        async with self._uow() as uow:
            return await uow.points.mismatches()

    def _rule(self, reason: Reason, rate: int | None) -> Rule:
        rule = self.policy.rule(reason)
        return rule if rate is None else replace(rule, points=rate)

    def _windows(self, rule: Rule, now: datetime) -> tuple[datetime, datetime] | None:
        """(day start, week start) when a cap applies to ``rule`` (None: no cap, no sums to read)."""
        if rule.daily_cap is None and rule.weekly_cap is None:
            return None
        tz = self.policy.timezone
        return day_start(now, tz), week_start(now, tz)

    async def _manual(self, actor: int, target: int, points: int, note: str, key: str, reason: Reason) -> int:
        if not 0 < points <= MAX_MANUAL or not note.strip():
            raise InvalidInput(field="points", value=points)
        async with self._uow() as uow:
            resident = await uow.residents.get_by_telegram_id(target)
            if resident is None or resident.community_id is None:
                raise NotFound(what="resident")
            await require_role(uow, actor, Role.ORGANISER, resident.community_id)
            account = await uow.points.lock_account(resident.id, resident.community_id)
            now, full_key = self._clock(), f"{reason.value}:{key}"
            if await uow.points.has_entry(full_key):
                return account.balance
            if reason is Reason.MANUAL_GRANT:
                expires = self.policy.expires_at(now)
                await credit(uow, account, points, reason, full_key, now, expires_at=expires, actor=actor, note=note)
            else:
                await debit(uow, account, points, reason, full_key, now, actor=actor, note=note)
            details = {"target": target, "points": points, "note": note[:200], "reason": reason.value}
            await uow.audit.add(now, actor, f"points.{reason.value}", True, details)
            await uow.commit()
        return account.balance + (points if reason is Reason.MANUAL_GRANT else -points)

    async def _expire_account(self, account_id: int, now: datetime) -> int:
        async with self._uow() as uow:
            account = await uow.points.lock_account_id(account_id)
            gone = expired(await uow.points.lots(account.id), now)
            for lot in gone:
                await uow.points.take([(lot.id, lot.remaining)])
                await uow.points.change_balance(account.id, -lot.remaining)
                await uow.points.add_entry(
                    account.id, -lot.remaining, Reason.EXPIRY, f"lot:{lot.id}", f"expiry:{lot.id}", now
                )
            await uow.commit()
        return sum(lot.remaining for lot in gone)


async def member(uow: UnitOfWork, telegram_id: int) -> Resident:
    resident = await uow.residents.get_by_telegram_id(telegram_id)
    if resident is None or not resident.is_registered:
        raise NeedsConsent()
    return resident


def community_of(resident: Resident) -> int:
    assert resident.community_id is not None
    return resident.community_id


async def require_role(uow: UnitOfWork, telegram_id: int, role: Role, community_id: int) -> Resident:
    """Re-read the actor's roles for the community concerned: a role elsewhere is not enough."""
    actor = await uow.residents.get_by_telegram_id(telegram_id)
    if actor is None or not actor.has_role(role, community_id):
        raise Forbidden(role=role.value)
    return actor
