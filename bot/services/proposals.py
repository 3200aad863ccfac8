"""居民提案制: residents submit proposals, organisers review them, residents support them until a threshold sends
them to a vote, the vote's result is published, the organiser decides, and an accepted proposal is accounted for
(milestones, money planned and spent: 资金使用公示).

Every decision about one proposal is taken under its row lock (``proposals.get(for_update=True)``), so when 200
residents tap "support" at once, each counts the supports with the ones before it committed, and exactly one of them
finds the threshold reached while the proposal is still collecting: one transition, one set of notices (also keyed
in the outbox). A support and a vote are inserts the primary key makes once per resident. The ends of the
collection period and of the vote window are durable jobs (``bot.services.jobs``: claimed with ``SKIP LOCKED`` on
PostgreSQL, so several workers never run the same one) that re-check the state under the same lock.

Whatever someone is told goes through the outbox in the transaction of the change, keyed once per cause; notices to
residents wait for the end of their quiet hours like campaign notices do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.actions import declare
from bot.domain.campaigns import Audience, AudienceKind, Recipient
from bot.domain.jobs import Job
from bot.domain.media import MAX_PHOTO_BYTES, PhotoRefused
from bot.domain.notices import Choice as Button
from bot.domain.notices import Notice, Priority
from bot.domain.proposals import (
    PUBLIC,
    Accountability,
    Choice,
    Draft,
    Expense,
    Milestone,
    Proposal,
    ProposalError,
    ProposalStatus,
    Rules,
    check_move,
    clean_note,
    clean_reason,
    collection_ends,
    parse_expense,
    parse_yuan,
    vote_window,
    yuan,
)
from bot.domain.residents import Community, Resident
from bot.domain.roles import Role
from bot.services.files import PhotoIntake
from bot.services.guards import community_by_id, organiser_of
from bot.services.jobs import JobRunner
from bot.services.outbox import delivery_row, queue_all
from bot.services.points import member
from bot.services.ports import Clock, UnitOfWork, UnitOfWorkFactory

S = ProposalStatus
COLLECT_END, VOTE_END = "proposal.collect_end", "proposal.vote_end"
PHOTO_FOLDER = "proposals"  # kept apart from report photos: the reports' orphan sweep does not know proposals
LIST_SIZE = 10

# Buttons that proposal notices carry (the ``pp`` router binds them).
OPEN = declare("pp", "open", int)  # a proposal's card
SUPPORT = declare("pp", "sup", int)
VOTE = declare("pp", "vote", int, str)  # proposal, choice
REVIEW_ACCEPT = declare("pp", "acc", int)  # organiser: open for support
REVIEW_REJECT = declare("pp", "rej", int)  # organiser: reject (asks the reason)
DECIDE = declare("pp", "dec", int, int)  # organiser: 1 accepted, 0 not accepted (asks the reason)


@dataclass(frozen=True)
class SupportOutcome:
    proposal: Proposal
    vote_opened: bool


@dataclass(frozen=True)
class View:
    """One proposal as one person sees it: what they did, what they may do now."""

    proposal: Proposal
    community: Community
    zone: ZoneInfo
    now: datetime
    supported: bool
    vote: Choice | None
    organiser: bool
    mine: bool
    account: Accountability = field(default_factory=Accountability)

    @property
    def can_support(self) -> bool:
        return self.proposal.collecting(self.now) and not self.supported

    @property
    def can_vote(self) -> bool:
        return self.proposal.vote_open(self.now) and self.vote is None

    @property
    def can_review(self) -> bool:
        return self.organiser and self.proposal.status is S.SUBMITTED

    @property
    def can_decide(self) -> bool:
        return self.organiser and self.proposal.status is S.VOTED

    @property
    def can_account(self) -> bool:
        return self.organiser and self.proposal.status is S.ACCEPTED


@dataclass(frozen=True)
class Board:
    """``/proposals``: what is open for support, in the vote, decided; a resident's own; an organiser's to-do."""

    community: Community
    zone: ZoneInfo
    collecting: list[Proposal]
    voting: list[Proposal]
    accepted: list[Proposal]
    mine: list[Proposal]
    to_review: list[Proposal]
    to_decide: list[Proposal]
    organiser: bool


class ProposalService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        defaults: Rules,
        timezone: str,
        photos: PhotoIntake | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self.defaults = defaults
        self._default_zone = timezone
        self._photos = photos

    def now(self) -> datetime:
        return self._clock()

    def zone(self, community: Community | None) -> ZoneInfo:
        return ZoneInfo((community.timezone if community else None) or self._default_zone)

    def register_jobs(self, runner: JobRunner) -> None:
        runner.register(COLLECT_END, self.collection_ended)
        runner.register(VOTE_END, self.vote_ended)

    # ---- submitting and reviewing -----------------------------------------------------------------------------

    async def add_photo(self, file_id: str, size: int | None = None) -> str:
        """Store a proposal's photo (metadata stripped, size-limited) by its Telegram file id."""
        if self._photos is None:
            raise PhotoRefused("no photo store", reason="not_image", limit_mb=MAX_PHOTO_BYTES // (1024 * 1024))
        if size is not None and size > MAX_PHOTO_BYTES:
            raise PhotoRefused("photo too large", reason="too_large", limit_mb=MAX_PHOTO_BYTES // (1024 * 1024))
        return await self._photos.take(file_id, PHOTO_FOLDER)

    async def sweep_orphan_photos(self, now: datetime, grace: timedelta = timedelta(days=2)) -> int:
        """Delete proposal photos stored more than ``grace`` ago that no proposal, milestone or live dialog state
        (a proposal being written) refers to; how many went. References are read before the files are listed."""
        if self._photos is None:
            return 0
        async with self._uow() as uow:
            in_use = await uow.reports.photo_keys_in_use(now, f"{PHOTO_FOLDER}/")
            in_use |= await uow.proposals.photo_keys()
        return await self._photos.remove_unused(now - grace, in_use, PHOTO_FOLDER)

    def photo_path(self, key: str | None) -> str | None:
        return self._photos.locate(key) if key and self._photos is not None else None

    async def submit(self, telegram_id: int, draft: Draft) -> Proposal:
        """A resident's proposal, waiting for the community's organisers (who are told, with buttons)."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident.community_id)
            proposal = await uow.proposals.add(
                Proposal(
                    0,
                    community.id,
                    resident.id,
                    draft.title,
                    draft.description,
                    draft.cost_fen,
                    draft.track,
                    S.SUBMITTED,
                    now,
                    photo=draft.photo,
                )
            )
            zone = self.zone(community)
            notices = []
            for organiser in await uow.residents.with_role(Role.ORGANISER, community.id):
                if organiser.telegram_id is None:
                    continue
                choices = ((Button("proposals.btn.accept", REVIEW_ACCEPT, (proposal.id,)),
                            Button("proposals.btn.reject", REVIEW_REJECT, (proposal.id,))),)  # fmt: skip
                notices.append(
                    Notice(
                        organiser.telegram_id,
                        "proposals/to_review",
                        card(proposal, community, zone),
                        organiser.locale,
                        photo=self.photo_path(proposal.photo),
                        choices=choices,
                        key=f"pp:{proposal.id}:review:{organiser.telegram_id}",
                    )
                )
            await queue_all(uow, notices, now)
            await uow.commit()
        return proposal

    async def review(self, telegram_id: int, proposal_id: int, *, accept: bool, reason: str | None = None) -> Proposal:
        """An organiser opens the proposal for support (with the community's threshold and period) or rejects it
        with a reason the author is told."""
        reason = None if accept else clean_reason(reason)
        now = self._clock()
        async with self._uow() as uow:
            proposal, community = await self._locked(uow, proposal_id)
            organiser = await self._organiser(uow, telegram_id, community.id, "proposal.review", proposal_id)
            target = S.COLLECTING if accept else S.REJECTED
            check_move(proposal.status, target)
            fields: dict[str, Any] = {"reviewed_at": now, "reviewed_by": organiser.telegram_id}
            if accept:
                rules = await self._rules(uow, community.id)
                fields |= {"threshold": rules.threshold, "collect_ends_at": collection_ends(now, rules)}
                await uow.jobs.add(COLLECT_END, fields["collect_ends_at"], {"proposal": proposal.id},
                                   f"pp:{proposal.id}:collect", now)  # fmt: skip
            else:
                fields["reason"] = reason
            await uow.proposals.move(proposal.id, proposal.status, target, **fields)
            proposal = await _get(uow, proposal.id)
            template = "proposals/opened" if accept else "proposals/rejected"
            await self._tell(uow, proposal, community, template, "review", now, choices=_open(proposal))
            await _audit(uow, now, telegram_id, "proposal.review", proposal, {"accept": accept})
            await uow.commit()
        return proposal

    # ---- support -------------------------------------------------------------------------------------------------

    async def support(self, telegram_id: int, proposal_id: int) -> SupportOutcome:
        """Support a proposal of one's community while it collects; the support that reaches the threshold opens the
        vote (exactly one does: all of them count under the proposal's row lock)."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            proposal, community = await self._locked(uow, proposal_id)
            _same_community(proposal, resident)
            if not proposal.collecting(now):
                raise ProposalError("not_collecting", status=proposal.status.value)
            if not await uow.proposals.add_support(proposal.id, resident.id, now):
                raise ProposalError("already_supported")
            count = await uow.proposals.count_supports(proposal.id)
            opened = count >= proposal.threshold
            if opened:
                await self._open_vote(uow, proposal, community, now)
            proposal = await _get(uow, proposal.id)
            await uow.commit()
        return SupportOutcome(proposal, opened)

    async def _open_vote(self, uow: UnitOfWork, proposal: Proposal, community: Community, now: datetime) -> None:
        rules = await self._rules(uow, community.id)
        starts, ends = vote_window(now, rules)
        if not await uow.proposals.move(proposal.id, S.COLLECTING, S.VOTING, vote_starts_at=starts, vote_ends_at=ends):
            return
        await uow.jobs.add(VOTE_END, ends, {"proposal": proposal.id}, f"pp:{proposal.id}:vote", now)
        opened = await _get(uow, proposal.id)
        buttons = _vote_buttons(opened)
        await self._tell(uow, opened, community, "proposals/vote_open", "vote_open", now, choices=buttons, groups=True)

    # ---- voting --------------------------------------------------------------------------------------------------

    async def vote(self, telegram_id: int, proposal_id: int, choice: str) -> tuple[Proposal, Choice]:
        """One vote per resident of the proposal's community while the window is open (the first vote stands)."""
        try:
            chosen = Choice(choice)
        except ValueError:
            raise ProposalError("bad_choice") from None
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            # Under the row lock: the job that closes the window counts after every vote taken before it.
            proposal, _ = await self._locked(uow, proposal_id)
            _same_community(proposal, resident)
            if not proposal.vote_open(now):
                raise ProposalError("vote_closed", status=proposal.status.value)
            if not await uow.proposals.add_vote(proposal.id, resident.id, chosen, now):
                earlier = await uow.proposals.vote_of(proposal.id, resident.id)
                raise ProposalError("already_voted", choice=earlier.value if earlier else "")
            await uow.commit()
        return proposal, chosen

    # ---- timers --------------------------------------------------------------------------------------------------

    async def collection_ended(self, job: Job, now: datetime) -> list[Notice]:
        """The collection period is over: a proposal still below its threshold expires (its supporters are told)."""
        async with self._uow() as uow:
            found = await uow.proposals.get(int(job.payload["proposal"]), for_update=True)
            if found is None or found.status is not S.COLLECTING:
                return []  # it went to the vote (or was removed) meanwhile
            if found.collect_ends_at is not None and now < found.collect_ends_at:
                return []
            community = await _community(uow, found.community_id)
            await uow.proposals.move(found.id, S.COLLECTING, S.EXPIRED, closed_at=now)
            expired = await _get(uow, found.id)
            await self._tell(uow, expired, community, "proposals/expired", "expired", now, choices=_open(expired))
            await uow.commit()
        return []

    async def vote_ended(self, job: Job, now: datetime) -> list[Notice]:
        """The vote window closed: count, publish the result to supporters and the community's groups, and ask the
        organisers for the decision."""
        async with self._uow() as uow:
            found = await uow.proposals.get(int(job.payload["proposal"]), for_update=True)
            if found is None or found.status is not S.VOTING:
                return []
            if found.vote_ends_at is not None and now < found.vote_ends_at:
                return []
            community = await _community(uow, found.community_id)
            result = await uow.proposals.tally(found.id)
            await uow.proposals.move(found.id, S.VOTING, S.VOTED, closed_at=now, tally=result)
            voted = await _get(uow, found.id)
            await self._tell(uow, voted, community, "proposals/result", "result", now, choices=_open(voted),
                             groups=True)  # fmt: skip
            zone = self.zone(community)
            notices = []
            for organiser in await uow.residents.with_role(Role.ORGANISER, community.id):
                if organiser.telegram_id is None:
                    continue
                choices = ((Button("proposals.btn.decide_yes", DECIDE, (voted.id, 1)),
                            Button("proposals.btn.decide_no", DECIDE, (voted.id, 0))),)  # fmt: skip
                notices.append(Notice(organiser.telegram_id, "proposals/to_decide", card(voted, community, zone),
                                      organiser.locale, choices=choices,
                                      key=f"pp:{voted.id}:decide:{organiser.telegram_id}"))  # fmt: skip
            await queue_all(uow, notices, now)
            await uow.commit()
        return []

    # ---- the decision and accountability -------------------------------------------------------------------------

    async def decide(
        self, telegram_id: int, proposal_id: int, *, accepted: bool, reason: str | None = None
    ) -> Proposal:
        """The organiser records the decision after the vote: accepted (its accountability record starts, with the
        estimate as the money planned) or not accepted with a reason everyone who supported it is told."""
        reason = None if accepted else clean_reason(reason)
        now = self._clock()
        async with self._uow() as uow:
            proposal, community = await self._locked(uow, proposal_id)
            organiser = await self._organiser(uow, telegram_id, community.id, "proposal.decide", proposal_id)
            target = S.ACCEPTED if accepted else S.NOT_ACCEPTED
            check_move(proposal.status, target)
            fields: dict[str, Any] = {"decided_at": now, "decided_by": organiser.telegram_id}
            fields |= {"budget_fen": proposal.cost_fen} if accepted else {"reason": reason}
            await uow.proposals.move(proposal.id, S.VOTED, target, **fields)
            decided = await _get(uow, proposal.id)
            template = "proposals/accepted" if accepted else "proposals/not_accepted"
            await self._tell(uow, decided, community, template, "decision", now, choices=_open(decided), groups=True)
            await _audit(uow, now, telegram_id, "proposal.decide", decided, {"accepted": accepted})
            await uow.commit()
        return decided

    async def add_milestone(
        self, telegram_id: int, proposal_id: int, note: str | None, photo: str | None = None
    ) -> Milestone:
        """A step of an accepted proposal (a note, today's date, an optional photo); supporters are told."""
        text = clean_note(note)
        now = self._clock()
        async with self._uow() as uow:
            proposal, community = await self._locked(uow, proposal_id)
            await self._organiser(uow, telegram_id, community.id, "proposal.milestone", proposal_id)
            if proposal.status is not S.ACCEPTED:
                raise ProposalError("not_accepted_yet", status=proposal.status.value)
            milestone = await uow.proposals.add_milestone(Milestone(0, proposal.id, text, now, photo), telegram_id)
            extra = {"milestone": {"note": milestone.note, "at": now.astimezone(self.zone(community))}}
            await self._tell(uow, proposal, community, "proposals/milestone", f"ms:{milestone.id}", now,
                             choices=_open(proposal), extra=extra, photo=self.photo_path(photo))  # fmt: skip
            await _audit(uow, now, telegram_id, "proposal.milestone", proposal, {"milestone": milestone.id})
            await uow.commit()
        return milestone

    async def add_expense(self, telegram_id: int, proposal_id: int, text: str | None) -> Expense:
        """Money spent on an accepted proposal (``<yuan> <what for>``), made public to its supporters."""
        amount, purpose = parse_expense(text)
        now = self._clock()
        async with self._uow() as uow:
            proposal, community = await self._locked(uow, proposal_id)
            await self._organiser(uow, telegram_id, community.id, "proposal.expense", proposal_id)
            if proposal.status is not S.ACCEPTED:
                raise ProposalError("not_accepted_yet", status=proposal.status.value)
            expense = await uow.proposals.add_expense(Expense(0, proposal.id, amount, purpose, now), telegram_id)
            spent = sum(e.amount_fen for e in await uow.proposals.expenses(proposal.id))
            extra = {"expense": {"amount": yuan(amount), "purpose": purpose, "spent": yuan(spent),
                                 "budget": yuan(proposal.budget_fen or 0)}}  # fmt: skip
            await self._tell(uow, proposal, community, "proposals/expense", f"ex:{expense.id}", now,
                             choices=_open(proposal), extra=extra)  # fmt: skip
            await _audit(uow, now, telegram_id, "proposal.expense", proposal, {"fen": amount})
            await uow.commit()
        return expense

    async def require_organiser(self, telegram_id: int, proposal_id: int, action: str) -> Proposal:
        """Before asking an organiser for a reason, a note or an amount: they organise the proposal's community
        (a refusal is audited, as for the action itself)."""
        async with self._uow() as uow:
            proposal = await uow.proposals.get(proposal_id)
            if proposal is None:
                raise ProposalError("not_found")
            await self._organiser(uow, telegram_id, proposal.community_id, action, proposal_id)
        return proposal

    async def set_budget(self, telegram_id: int, proposal_id: int, text: str | None) -> Proposal:
        """The money planned for an accepted proposal (the estimate until the organiser sets it), made public."""
        fen = parse_yuan(text)
        if fen == 0:
            raise ProposalError("amount_zero")
        now = self._clock()
        async with self._uow() as uow:
            proposal, community = await self._locked(uow, proposal_id)
            await self._organiser(uow, telegram_id, community.id, "proposal.budget", proposal_id)
            if proposal.status is not S.ACCEPTED:
                raise ProposalError("not_accepted_yet", status=proposal.status.value)
            await uow.proposals.update(proposal.id, budget_fen=fen)
            changed = await _get(uow, proposal.id)
            spent = sum(e.amount_fen for e in await uow.proposals.expenses(proposal.id))
            extra = {"before": yuan(proposal.budget_fen or 0), "spent": yuan(spent)}
            await self._tell(uow, changed, community, "proposals/budget", f"bg:{now.isoformat()}", now,
                             choices=_open(changed), extra=extra)  # fmt: skip
            await _audit(uow, now, telegram_id, "proposal.budget", changed, {"fen": fen})
            await uow.commit()
        return changed

    # ---- rules ---------------------------------------------------------------------------------------------------

    async def rules_of(self, telegram_id: int) -> tuple[Rules, Community]:
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident.community_id)
            return await self._rules(uow, community.id), community

    async def set_rules(self, telegram_id: int, rules: Rules) -> Community:
        """An organiser sets the community's threshold and periods (proposals already collecting keep theirs)."""
        now = self._clock()
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident.community_id)
            await self._organiser(uow, telegram_id, community.id, "proposal.rules", None)
            await uow.proposals.save_rules(community.id, rules, now, telegram_id)
            details = {"community": community.code, "threshold": rules.threshold, "collect_days": rules.collect_days,
                       "vote_days": rules.vote_days}  # fmt: skip
            await uow.audit.add(now, telegram_id, "proposal.rules", True, details)
            await uow.commit()
        return community

    # ---- reading -------------------------------------------------------------------------------------------------

    async def board(self, telegram_id: int) -> Board:
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            community = await _community(uow, resident.community_id)
            organiser = resident.has_role(Role.ORGANISER, community.id)
            found = uow.proposals.in_community
            collecting = await found(community.id, [S.COLLECTING], LIST_SIZE)
            voting = await found(community.id, [S.VOTING], LIST_SIZE)
            accepted = await found(community.id, [S.ACCEPTED], LIST_SIZE)
            mine = [p for p in await uow.proposals.by_author(resident.id, LIST_SIZE) if p.status not in
                    (S.COLLECTING, S.VOTING, S.ACCEPTED)]  # fmt: skip
            to_review = await found(community.id, [S.SUBMITTED], LIST_SIZE) if organiser else []
            to_decide = await found(community.id, [S.VOTED], LIST_SIZE) if organiser else []
        return Board(community, self.zone(community), collecting, voting, accepted, mine, to_review, to_decide,
                     organiser)  # fmt: skip

    async def view(self, telegram_id: int, proposal_id: int) -> View:
        """One proposal for a resident of its community (one that is not public yet: its author and organisers)."""
        async with self._uow() as uow:
            resident = await member(uow, telegram_id)
            proposal = await uow.proposals.get(proposal_id)
            if proposal is None:
                raise ProposalError("not_found")
            _same_community(proposal, resident)
            community = await _community(uow, proposal.community_id)
            organiser = resident.has_role(Role.ORGANISER, community.id)
            mine = proposal.author_id == resident.id
            if proposal.status not in PUBLIC and not (mine or organiser):
                raise ProposalError("not_found")
            supported = await uow.proposals.supported(proposal.id, resident.id)
            vote = await uow.proposals.vote_of(proposal.id, resident.id)
            account = await _account(uow, proposal)
        return View(proposal, community, self.zone(community), self._clock(), supported, vote, organiser, mine,
                    account)  # fmt: skip

    async def in_community(self, community_id: int) -> list[Proposal]:
        """Every proposal of a community, newest first (the dashboard's board; its caller checked the reader)."""
        async with self._uow() as uow:
            return await uow.proposals.in_community(community_id, list(S), 500)

    async def record(self, proposal_id: int) -> tuple[Proposal, Accountability] | None:
        """A proposal with its accountability record (the dashboard; its caller checks the community)."""
        async with self._uow() as uow:
            proposal = await uow.proposals.get(proposal_id)
            if proposal is None:
                return None
            return proposal, await _account(uow, proposal)

    # ---- helpers -------------------------------------------------------------------------------------------------

    async def _locked(self, uow: UnitOfWork, proposal_id: int) -> tuple[Proposal, Community]:
        proposal = await uow.proposals.get(proposal_id, for_update=True)
        if proposal is None:
            raise ProposalError("not_found")
        return proposal, await _community(uow, proposal.community_id)

    async def _rules(self, uow: UnitOfWork, community_id: int) -> Rules:
        return await uow.proposals.rules(community_id) or self.defaults

    async def _organiser(
        self, uow: UnitOfWork, telegram_id: int, community_id: int, action: str, proposal_id: int | None
    ) -> Resident:
        """The actor must organise the proposal's community; a refusal is audited here (and not again)."""
        details = {"proposal": proposal_id}
        return await organiser_of(uow, self._clock(), telegram_id, community_id, action, details=details)

    async def _tell(
        self,
        uow: UnitOfWork,
        proposal: Proposal,
        community: Community,
        template: str,
        step: str,
        now: datetime,
        *,
        choices: tuple[tuple[Button, ...], ...] = (),
        groups: bool = False,
        extra: dict[str, Any] | None = None,
        photo: str | None = None,
    ) -> int:
        """Queue a step's notice to the author and supporters (held through their quiet hours) and, with ``groups``,
        to the community's residents' groups (no buttons there: a tap in a group would act for whoever taps)."""
        zone = self.zone(community)
        context = card(proposal, community, zone) | (extra or {})
        recipients = await uow.proposals.audience(proposal.id)
        if groups:
            recipients += await uow.campaigns.recipients(community.id, Audience(AudienceKind.GROUPS))
        rows = []
        for recipient in recipients:
            group = recipient.chat_id < 0
            notice = Notice(recipient.chat_id, template, context | {"group": group}, recipient.locale or "zh_Hans",
                            photo=photo, choices=() if group else choices, key=f"pp:{proposal.id}:{step}:"
                            f"{recipient.chat_id}", priority=Priority.NOTICE)  # fmt: skip
            rows.append(_row(notice, recipient, now, zone))
        return await uow.campaigns.add_deliveries(rows)


def card(proposal: Proposal, community: Community, zone: ZoneInfo) -> dict[str, Any]:
    """What templates show of a proposal (times in the community's zone, money in yuan)."""

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(zone) if moment else None

    return {
        "id": proposal.id,
        "title": proposal.title,
        "description": proposal.description,
        "track": proposal.track,
        "cost": yuan(proposal.cost_fen),
        "status": proposal.status.value,
        "supports": proposal.supports,
        "threshold": proposal.threshold,
        "collect_ends": local(proposal.collect_ends_at),
        "vote_ends": local(proposal.vote_ends_at),
        "votes": proposal.tally.to_json(),
        "carried": proposal.tally.carried,
        "reason": proposal.reason,
        "budget": yuan(proposal.budget_fen) if proposal.budget_fen is not None else None,
        "community": community.name,
    }


def _row(notice: Notice, recipient: Recipient, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    return delivery_row(notice, now, None if recipient.quiet is None else recipient.quiet.release(now, zone))


def _open(proposal: Proposal) -> tuple[tuple[Button, ...], ...]:
    return ((Button("proposals.btn.open", OPEN, (proposal.id,)),),)


def _vote_buttons(proposal: Proposal) -> tuple[tuple[Button, ...], ...]:
    return (
        tuple(Button(f"proposals.btn.vote_{c.value}", VOTE, (proposal.id, c.value)) for c in Choice),
        (Button("proposals.btn.open", OPEN, (proposal.id,)),),
    )


def _same_community(proposal: Proposal, resident: Resident) -> None:
    if proposal.community_id != resident.community_id:
        raise ProposalError("other_community")


async def _get(uow: UnitOfWork, proposal_id: int) -> Proposal:
    proposal = await uow.proposals.get(proposal_id)
    assert proposal is not None
    return proposal


_community = community_by_id


async def _account(uow: UnitOfWork, proposal: Proposal) -> Accountability:
    if proposal.status is not S.ACCEPTED:
        return Accountability(budget_fen=proposal.budget_fen)
    milestones = tuple(await uow.proposals.milestones(proposal.id))
    expenses = tuple(await uow.proposals.expenses(proposal.id))
    return Accountability(milestones, expenses, proposal.budget_fen)


async def _audit(
    uow: UnitOfWork, now: datetime, actor: int, action: str, proposal: Proposal, details: dict[str, Any]
) -> None:
    await uow.audit.add(now, actor, action, True, {"proposal": proposal.id, "community": proposal.community_id}
                        | details)  # fmt: skip
