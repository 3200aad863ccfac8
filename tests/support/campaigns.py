"""A community with residents for notice tests: an app on a fake clock, residents made in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bot.app import App
from bot.domain.roles import Role
from storage.uow import SqlUnitOfWork

ORGANISER = 900_001


async def populate(
    app: App,
    telegram_ids: Iterable[int],
    now: datetime,
    *,
    community: str = "demo",
    building: str | None = "1",
    locale: str = "zh_Hans",
) -> None:
    """Registered residents of ``community`` (fast: one transaction, no dialog)."""
    found = await app.services.communities.by_code(community)
    assert found is not None
    place = found.building(building) if building else None
    async with app.transactions.scope() as uow:
        assert isinstance(uow, SqlUnitOfWork)
        for telegram_id in telegram_ids:
            resident = await uow.residents.add(telegram_id, locale, now)
            await uow.residents.update(
                resident.id,
                consent_at=now,
                consent_version="t",
                community_id=found.id,
                building_id=place.id if place else None,
            )
        await uow.commit()


async def organiser(app: App, now: datetime, telegram_id: int = ORGANISER, community: str = "demo") -> int:
    await populate(app, [telegram_id], now, community=community)
    await app.services.access.grant(telegram_id, Role.ORGANISER, community, None)
    return telegram_id
