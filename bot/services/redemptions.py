"""Redeeming rewards: stock and points taken at once, a code verified once, refunds on cancel or expiry."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from bot.domain.errors import NotFound
from bot.domain.notices import Notice
from bot.domain.points import Account, InsufficientPoints, Policy, Reason, day_start
from bot.domain.rewards import (
    AlreadyVerified,
    CodeNotFound,
    OtherCommunity,
    OutOfStock,
    Redemption,
    RedemptionClosed,
    RedemptionStatus,
    Reward,
    new_code,
    normalise_code,
)
from bot.domain.roles import Role
from bot.services.outbox import queue
from bot.services.points import community_of, credit, debit, member
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

QrMaker = Callable[[str], str | None]
MINE = 10
TODAY = 50
EXPIRY_BATCH = 500
USED = "points/used_notice"  # to the resident, when a service point verified their code


class AlreadyUsed(RedemptionClosed):
    """The resident tries to cancel a redemption a service point has verified: it carries the ticket to show."""

    template = "points/already_used"

    def __init__(self, ticket: Ticket) -> None:
        super().__init__(ticket=ticket)
        self.ticket = ticket


@dataclass(frozen=True)
class Ticket:
    """A redemption with its reward, as a resident or a service point sees it."""

    redemption: Redemption
    reward: Reward
    tz: tzinfo
    balance: int | None = None
    qr: str | None = None

    def local(self, moment: datetime | None) -> datetime | None:
        """A stored (UTC) time in the community's timezone, for templates."""
        return moment.astimezone(self.tz) if moment else None

    @property
    def last_day(self) -> date:
        """The last local day the code can be used on (it expires when the next one begins)."""
        return (self.redemption.expires_at.astimezone(self.tz) - timedelta(microseconds=1)).date()


class RedemptionService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: Policy,
        rng: random.Random,
        qr: QrMaker | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._rng = rng
        self._qr = qr

    async def redeem(self, telegram_id: int, reward_id: int, request: str | None = None) -> Ticket:
        """Reserve one unit and debit its cost in one transaction; the resident gets a code and a QR image.

        ``request`` names what the resident did (the confirm button of one reward card): the same request twice —
        a double tap — is one redemption, and the second tap is shown the same ticket.
        """
        now = self._clock()
        key = f"redeem:{telegram_id}:{request}" if request else None
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            account = await uow.points.lock_account(resident.id, community_of(resident))
            if key is not None and (ref := await uow.points.entry_ref(key)) is not None:
                earlier = await uow.rewards.redemption_by_code(ref.removeprefix("redemption:"))
                reward_of = await uow.rewards.get(earlier.reward_id) if earlier else None
                if earlier is not None and reward_of is not None:
                    return self._ticket(earlier, reward_of, balance=account.balance, qr=None)
            reward = await uow.rewards.get(reward_id, for_update=True)
            if reward is None or reward.community_id != account.community_id:
                raise NotFound(what="reward")
            reward.check_redeemable(now, await uow.rewards.count_held(account.id, reward.id))
            if account.balance < reward.cost:
                raise InsufficientPoints(balance=account.balance, cost=reward.cost)
            if not await uow.rewards.take_stock(reward.id):
                raise OutOfStock(reward=reward.slug)
            redemption = await self._reserve(uow, account, reward, now, key)
            await uow.commit()
        qr = self._qr(redemption.code) if self._qr else None
        return self._ticket(redemption, reward, balance=account.balance - reward.cost, qr=qr)

    async def cancel(self, telegram_id: int, redemption_id: int) -> Ticket:
        """The resident gives an unused redemption back: points refunded, stock returned."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            found = await uow.rewards.redemption(redemption_id)
            account = await uow.points.lock_account_id(found.account_id) if found else None
            if found is None or account is None or account.resident_id != resident.id:
                raise NotFound(what="redemption")
            current = await self._reload(uow, redemption_id)
            if current.status is RedemptionStatus.FULFILLED:
                used_for = await uow.rewards.get(current.reward_id)
                assert used_for is not None
                raise AlreadyUsed(self._ticket(current, used_for))
            redemption, reward = await self._close(uow, account, redemption_id, RedemptionStatus.CANCELLED)
            await uow.commit()
        return self._ticket(redemption, reward, balance=account.balance + redemption.cost)

    async def verify(self, telegram_id: int, text: str) -> Ticket:
        """A service point redeems a code: only in its own community, and only once."""
        code = normalise_code(text)
        if code is None:
            raise CodeNotFound(code=text[:16])
        async with self._uow() as uow:
            redemption = await uow.rewards.redemption_by_code(code, for_update=True)
            if redemption is None:
                raise CodeNotFound(code=code)
            actor = await uow.residents.get_by_telegram_id(telegram_id)
            if actor is None or not actor.has_role(Role.SERVICE_POINT, redemption.community_id):
                raise OtherCommunity(code=code)
            redemption = await self._fulfil(uow, redemption, telegram_id)
            reward = await uow.rewards.get(redemption.reward_id)
            assert reward is not None
            await self._tell_owner(uow, redemption, reward)
            await uow.commit()
        return self._ticket(redemption, reward)

    async def today(self, telegram_id: int) -> list[Ticket]:
        """What this service point handed over today (community time), newest first."""
        since = day_start(self._clock(), self._policy.timezone)
        async with self._uow() as uow:
            found = await uow.rewards.verified_by(telegram_id, since, TODAY)
            rewards = {r.reward_id: await uow.rewards.get(r.reward_id) for r in found}
        return [self._ticket(r, reward) for r in found if (reward := rewards[r.reward_id]) is not None]

    async def mine(self, telegram_id: int) -> list[Ticket]:
        """The resident's latest redemptions in their community, newest first."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            account = await uow.points.account(resident.id, community_of(resident))
            found = await uow.rewards.redemptions_of(account.id, MINE) if account else []
            rewards = {r.reward_id: await uow.rewards.get(r.reward_id) for r in found}
        return [self._ticket(r, reward) for r in found if (reward := rewards[r.reward_id]) is not None]

    async def expire_redemptions(self, now: datetime | None = None) -> int:
        """Refund redemptions not used in time (the periodic job); returns how many expired."""
        now = now or self._clock()
        async with self._uow() as uow:
            due = await uow.rewards.due(now, EXPIRY_BATCH)
        expired = 0
        for redemption_id in due:
            expired += await self._expire_one(redemption_id, now)
        return expired

    async def _reserve(
        self, uow: UnitOfWork, account: Account, reward: Reward, now: datetime, key: str | None = None
    ) -> Redemption:
        code = await self._free_code(uow)
        ref = f"redemption:{code}"
        first_expiry = await debit(uow, account, reward.cost, Reason.REDEMPTION, key or ref, now, ref=ref)
        # Valid through the whole local day ``redemption_valid_days`` from today: a code taken at 01:00 must not
        # lapse at 01:00 on its last day, and "请于 12-22 前" / "我的兑换" name a day, not a minute.
        expires = day_start(now, self._policy.timezone) + timedelta(days=self._policy.redemption_valid_days + 1)
        draft = Redemption(
            0,
            code,
            account.id,
            account.community_id,
            reward.id,
            reward.cost,
            RedemptionStatus.RESERVED,
            now,
            expires,
            refund_expires_at=first_expiry,
        )
        return await uow.rewards.add_redemption(draft)

    async def _tell_owner(self, uow: UnitOfWork, redemption: Redemption, reward: Reward) -> None:
        """The resident hears that their code was used, in the verification's own transaction."""
        account = await uow.points.account_by_id(redemption.account_id)
        owner = await uow.residents.get(account.resident_id) if account else None
        if owner is None or owner.telegram_id is None:
            return  # the resident deleted their data since
        context = {
            "reward": reward.title(owner.locale),
            "code": redemption.code_shown,
            "at": _local(redemption.closed_at, self._policy.timezone),
            "place": reward.service_point,
        }
        notice = Notice(owner.telegram_id, USED, context, owner.locale, key=f"redemption-used:{redemption.id}")
        await queue(uow, notice, self._clock())

    async def _free_code(self, uow: UnitOfWork) -> str:
        # 31^8 codes: a clash is rare, and the unique constraint still guards the one we miss.
        for _ in range(5):
            code = new_code(self._rng)
            if not await uow.rewards.code_taken(code):
                return code
        raise RuntimeError("could not find a free redemption code")

    async def _fulfil(self, uow: UnitOfWork, redemption: Redemption, by: int) -> Redemption:
        now = self._clock()
        if redemption.status is RedemptionStatus.RESERVED and redemption.expires_at > now:
            if await uow.rewards.move(redemption.id, RedemptionStatus.RESERVED, RedemptionStatus.FULFILLED, now, by):
                return await self._reload(uow, redemption.id)
            redemption = await self._reload(uow, redemption.id)  # lost a race (SQLite reads are not locked)
        if redemption.status is RedemptionStatus.FULFILLED:
            raise AlreadyVerified(code=redemption.code_shown, at=_local(redemption.closed_at, self._policy.timezone))
        closed = redemption.status is not RedemptionStatus.RESERVED
        raise RedemptionClosed(status=redemption.status.value if closed else RedemptionStatus.EXPIRED.value)

    async def _close(
        self, uow: UnitOfWork, account: Account, redemption_id: int, target: RedemptionStatus
    ) -> tuple[Redemption, Reward]:
        now = self._clock()
        redemption = await self._reload(uow, redemption_id, lock=True)
        if not await uow.rewards.move(redemption.id, RedemptionStatus.RESERVED, target, now):
            raise RedemptionClosed(status=redemption.status.value)
        ref = f"redemption:{redemption.code}"
        await credit(
            uow,
            account,
            redemption.cost,
            Reason.REFUND,
            f"refund:{redemption.code}",
            now,
            ref=ref,
            expires_at=redemption.refund_expires_at,
        )
        await uow.rewards.add_stock(redemption.reward_id, 1)
        reward = await uow.rewards.get(redemption.reward_id)
        assert reward is not None
        return await self._reload(uow, redemption.id), reward

    async def _expire_one(self, redemption_id: int, now: datetime) -> int:
        async with self._uow() as uow:
            found = await self._reload(uow, redemption_id)
            account = await uow.points.lock_account_id(found.account_id)
            current = await self._reload(uow, redemption_id, lock=True)
            if current.status is not RedemptionStatus.RESERVED or current.expires_at > now:
                return 0
            await self._close(uow, account, redemption_id, RedemptionStatus.EXPIRED)
            await uow.commit()
        return 1

    @staticmethod
    async def _reload(uow: UnitOfWork, redemption_id: int, *, lock: bool = False) -> Redemption:
        redemption = await uow.rewards.redemption(redemption_id, for_update=lock)
        if redemption is None:
            raise NotFound(what="redemption")
        return redemption

    def _ticket(
        self, redemption: Redemption, reward: Reward, balance: int | None = None, qr: str | None = None
    ) -> Ticket:
        return Ticket(redemption, reward, self._policy.timezone, balance, qr)


def _local(moment: datetime | None, tz: tzinfo) -> datetime | None:
    return moment.astimezone(tz) if moment else None
