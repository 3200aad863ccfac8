"""The rewards catalogue: what residents see, what organisers change in the bot, and imports from YAML."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from bot.domain.errors import InvalidInput, NotFound
from bot.domain.residents import Resident
from bot.domain.rewards import LimitReached, OutOfStock, Reward, RewardUnavailable
from bot.domain.roles import Role
from bot.services.points import community_of, member, require_role
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory
from content.points import load_catalogue

EDITABLE = ("cost", "stock", "restock", "active")
MAX_COST = 1_000_000


@dataclass(frozen=True)
class Shelf:
    """Rewards on offer and the resident's balance, for the rewards screen."""

    rewards: list[Reward]
    balance: int


@dataclass(frozen=True)
class Offer:
    """One reward for one resident: their balance, and why they cannot redeem it now (None: they can)."""

    reward: Reward
    balance: int
    held: int  # this resident's redemptions of it, unused or used (what the per-person limit counts)
    blocked: str | None = None  # "points", "limit", "stock" or "unavailable"

    @property
    def short(self) -> int:
        return max(self.reward.cost - self.balance, 0)


@dataclass(frozen=True)
class ImportSummary:
    added: int
    updated: int


class RewardService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def shelf(self, telegram_id: int, reward_id: int | None = None) -> Shelf:
        """Rewards available in the resident's community now (or just ``reward_id``), with their balance."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community_id = community_of(resident)
            rewards = [r for r in await uow.rewards.in_community(community_id) if r.available(now)]
            account = await uow.points.account(resident.id, community_id)
        if reward_id is not None:
            rewards = [r for r in rewards if r.id == reward_id]
            if not rewards:
                raise NotFound(what="reward")
        return Shelf(rewards, account.balance if account else 0)

    async def offer(self, telegram_id: int, reward_id: int) -> Offer:
        """A reward's card for the resident: shown with the reason it cannot be redeemed, before any confirm."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community_id = community_of(resident)
            reward = await uow.rewards.get(reward_id)
            if reward is None or reward.community_id != community_id:
                raise NotFound(what="reward")
            account = await uow.points.account(resident.id, community_id)
            held = await uow.rewards.count_held(account.id, reward.id) if account else 0
        balance = account.balance if account else 0
        return Offer(reward, balance, held, _blocked(reward, now, held, balance))

    async def manage(self, actor: int) -> list[Reward]:
        """Every reward of the organiser's community, inactive ones included."""
        async with self._uow() as uow:
            organiser = await _organiser(uow, actor)
            return await uow.rewards.in_community(community_of(organiser))

    async def get(self, actor: int, reward_id: int) -> Reward:
        """One reward, for an organiser of its community."""
        async with self._uow() as uow:
            reward = await uow.rewards.get(reward_id)
            if reward is None:
                raise NotFound(what="reward")
            await require_role(uow, actor, Role.ORGANISER, reward.community_id)
            return reward

    async def add(
        self,
        actor: int,
        name_zh: str,
        name_en: str,
        cost: int,
        stock: int | None,
        place: str | None = None,
        description: str | None = None,
        limit: int | None = None,
    ) -> Reward:
        """An organiser adds a reward from the bot (audited): where to pick it up, what it is, how many each."""
        _check_number("cost", cost, 1)
        if stock is not None:
            _check_number("stock", stock, 0)
        if limit is not None:
            _check_number("limit", limit, 1)
        async with self._uow() as uow:
            organiser = await _organiser(uow, actor)
            community_id = community_of(organiser)
            slug = await _free_slug(uow, community_id, name_en)
            draft = Reward(
                0,
                community_id,
                slug,
                {"zh_Hans": name_zh[:48], "en": name_en[:48]},
                cost,
                stock,
                per_person_limit=limit,
                description={"zh_Hans": description[:300]} if description else {},
                service_point=place[:64] if place else None,
            )
            reward = await uow.rewards.add(draft)
            await uow.audit.add(self._clock(), actor, "reward.add", True, {"reward": slug, "cost": cost})
            await uow.commit()
        return reward

    async def edit(self, actor: int, reward_id: int, field: str, value: int) -> Reward:
        """Set cost or stock, restock (add), or switch active (1/0); audited, checked for the community."""
        if field not in EDITABLE:
            raise InvalidInput(field=field)
        _check_number(field, value, 1 if field in ("cost", "restock") else 0)
        async with self._uow() as uow:
            reward = await uow.rewards.get(reward_id, for_update=True)
            if reward is None:
                raise NotFound(what="reward")
            await require_role(uow, actor, Role.ORGANISER, reward.community_id)
            await _apply(uow, reward, field, value)
            details = {"reward": reward.slug, "field": field, "value": value}
            await uow.audit.add(self._clock(), actor, "reward.edit", True, details)
            await uow.commit()
            changed = await uow.rewards.get(reward_id)
        assert changed is not None
        return changed

    async def import_rewards(self, path: Path | str, community_code: str) -> ImportSummary:
        """Add or update (by slug) the rewards of a catalogue file for one community, in one transaction."""
        catalogue = load_catalogue(Path(path))
        if catalogue.community not in (None, community_code):
            raise InvalidInput(field="community", value=catalogue.community)
        added = updated = 0
        async with self._uow() as uow:
            community = await uow.communities.get_by_code(community_code)
            if community is None:
                raise NotFound(what="community", code=community_code)
            for item in catalogue.rewards:
                existing = await uow.rewards.get_by_slug(community.id, item.slug)
                if existing is None:
                    await uow.rewards.add(replace(item, community_id=community.id))
                    added += 1
                else:
                    await uow.rewards.update(existing.id, **_fields(item))
                    updated += 1
            await uow.commit()
        return ImportSummary(added, updated)


async def _organiser(uow: UnitOfWork, actor: int) -> Resident:
    organiser = await member(uow, actor)
    await require_role(uow, actor, Role.ORGANISER, community_of(organiser))
    return organiser


async def _apply(uow: UnitOfWork, reward: Reward, field: str, value: int) -> None:
    if field == "restock":
        if reward.stock is None:
            raise InvalidInput(field="restock", reason="unlimited")
        await uow.rewards.add_stock(reward.id, value)
        return
    column = {"cost": "cost", "stock": "stock", "active": "active"}[field]
    await uow.rewards.update(reward.id, **{column: bool(value) if field == "active" else value})


def _fields(item: Reward) -> dict[str, object]:
    keys = (
        "name",
        "description",
        "cost",
        "stock",
        "per_person_limit",
        "active",
        "active_from",
        "active_until",
        "service_point",
    )
    values = {key: getattr(item, key) for key in keys}
    values["name"], values["description"] = dict(item.name), dict(item.description)
    return values


def _blocked(reward: Reward, now: datetime, held: int, balance: int) -> str | None:
    """Why this resident cannot redeem ``reward`` now, in the order the redemption itself checks."""
    try:
        reward.check_redeemable(now, held)
    except LimitReached:
        return "limit"
    except OutOfStock:
        return "stock"
    except RewardUnavailable:
        return "unavailable"
    return "points" if balance < reward.cost else None


def _check_number(field: str, value: int, minimum: int) -> None:
    if not minimum <= value <= MAX_COST:
        raise InvalidInput(field=field, value=value)


async def _free_slug(uow: UnitOfWork, community_id: int, name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "reward"
    slug, n = base, 1
    while await uow.rewards.get_by_slug(community_id, slug) is not None:
        n += 1
        slug = f"{base}-{n}"
    return slug
