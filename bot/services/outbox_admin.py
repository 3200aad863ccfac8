"""What an operator does from the command line (``sicheng outbox``, ``sicheng notices``): read the outbox, send failed
messages again, cancel waiting ones, list and cancel campaign notices — no role check, every change audited with
actor None."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bot.domain.campaigns import RECENT_DAYS, Campaign, CampaignStatus, Counts
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.messaging import OutboxStatus
from bot.domain.outbox_admin import ADMIN_BATCH, AdminResult, OutboxEntry, Selection
from bot.domain.residents import Community
from bot.services.campaigns import current_counts
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

# Called after each batch with (rows done so far, rows selected).
Progress = Callable[[int, int], None]
CANCEL_REASON = "cancelled by an operator"


class OutboxAdmin:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def entries(self, selection: Selection, limit: int = 50) -> list[OutboxEntry]:
        async with self._uow() as uow:
            return await uow.outbox.entries(selection, limit)

    async def retry(
        self, selection: Selection, *, all_failed: bool = False, progress: Progress | None = None
    ) -> AdminResult:
        """Failed rows of the selection go back to pending (attempts reset, no delay). Without ids, a campaign or a
        chat, ``all_failed`` must say that every failed row is meant. A finished campaign whose rows are retried
        is sending again, so the bot counts them and its report follows."""
        if not (selection.names_rows or all_failed):
            raise InvalidInput(field="selection")
        return await self._change("outbox.retry", selection.with_status(OutboxStatus.FAILED), progress)

    async def cancel(self, selection: Selection, *, progress: Progress | None = None) -> AdminResult:
        """Pending rows of the selection are cancelled (a row being sent right now is left alone)."""
        if not selection.names_rows:
            raise InvalidInput(field="selection")
        return await self._change("outbox.cancel", selection.with_status(OutboxStatus.PENDING), progress)

    async def _change(self, action: str, selection: Selection, progress: Progress | None) -> AdminResult:
        async with self._uow() as uow:
            rows = await uow.outbox.matching(selection)
        ids = [row_id for row_id, _ in rows]
        changed = 0
        reopened: list[int] = []
        # One transaction per batch, each with its audit entry: an interrupted run leaves a true record.
        for start in range(0, len(ids), ADMIN_BATCH):
            batch = ids[start : start + ADMIN_BATCH]
            now = self._clock()
            async with self._uow() as uow:
                if action == "outbox.retry":
                    campaigns = await uow.outbox.requeue_failed(batch)
                    count = len(campaigns)
                    again = await self._reopen(uow, {c for c in campaigns if c is not None})
                    reopened += again
                else:
                    count = await uow.outbox.cancel_pending(batch, now, CANCEL_REASON)
                    again = []
                details = {
                    "selection": selection.to_json(),
                    "matched": len(ids),
                    "batch": [batch[0], batch[-1]],
                    "changed": count,
                    "campaigns_reopened": again,
                }
                await uow.audit.add(now, None, action, True, details)
                await uow.commit()
            changed += count
            if progress is not None:
                progress(start + len(batch), len(ids))
        if not ids:
            async with self._uow() as uow:
                await uow.audit.add(self._clock(), None, action, True, {"selection": selection.to_json(), "matched": 0})
                await uow.commit()
        return AdminResult(len(ids), changed, tuple(sorted(set(reopened))))

    async def _reopen(self, uow: UnitOfWork, campaign_ids: set[int]) -> list[int]:
        reopened = []
        for campaign_id in sorted(campaign_ids):
            if await uow.campaigns.move(campaign_id, CampaignStatus.DONE, CampaignStatus.SENDING):
                reopened.append(campaign_id)
        return reopened


@dataclass(frozen=True)
class NoticeLine:
    """A campaign as an operator lists it: live counts while it sends, final ones after."""

    campaign: Campaign
    counts: Counts
    community: Community

    @property
    def finished(self) -> bool:
        """Nothing more will happen: done, cancelled, or sending with every delivery settled."""
        if self.campaign.status in (CampaignStatus.DONE, CampaignStatus.CANCELLED):
            return True
        return self.campaign.status is CampaignStatus.SENDING and self.counts.pending == 0


class NoticeAdmin:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def recent(self, community_code: str | None = None, limit: int = 20) -> list[NoticeLine]:
        """Notices of the last days and every scheduled one, newest first (one community, or all)."""
        now = self._clock()
        async with self._uow() as uow:
            ids = None
            if community_code is not None:
                community = await uow.communities.get_by_code(community_code)
                if community is None:
                    raise NotFound(what="community", code=community_code)
                ids = [community.id]
            since = now - timedelta(days=RECENT_DAYS)
            campaigns = await uow.campaigns.recent(ids, since, limit, list(CampaignStatus))
            return [await self._line(uow, c) for c in campaigns]

    async def state(self, campaign_id: int) -> NoticeLine:
        async with self._uow() as uow:
            campaign = await uow.campaigns.get(campaign_id)
            if campaign is None:
                raise NotFound(what="notice", id=campaign_id)
            return await self._line(uow, campaign)

    async def _line(self, uow: UnitOfWork, campaign: Campaign) -> NoticeLine:
        community = await uow.communities.get(campaign.community_id)
        if community is None:
            raise NotFound(what="community")
        return NoticeLine(campaign, await current_counts(uow, campaign), community)
