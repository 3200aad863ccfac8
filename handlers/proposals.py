"""居民提案制 in the bot: ``/propose`` (title, description, an optional photo, the estimated cost, the track, confirm),
``/proposals`` (open for support, in the vote, accepted with their progress; one tap into each), support and vote
buttons, and the organisers' buttons (open for support or reject with a reason, record the decision after the vote,
add a milestone or money spent) and ``/proposalrules``.

Buttons carry ids only; the service decides what the sender may do (another community's proposal, an organiser's
action by a resident, a closed vote are refused there, and nothing changes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, AnswerCallback, Button, EditText, SendText, keyboard
from bot.conversation.router import Needs, Router
from bot.domain.proposals import (
    DESCRIPTION_MAX,
    NOTE_MAX,
    REASON_MAX,
    TITLE_MAX,
    TRACKS,
    Draft,
    ProposalError,
    Rules,
    clean_description,
    clean_note,
    clean_title,
    parse_yuan,
    yuan,
)
from bot.services.proposals import (
    DECIDE,
    OPEN,
    REVIEW_ACCEPT,
    REVIEW_REJECT,
    SUPPORT,
    VOTE,
    Board,
    View,
    card,
)
from handlers import menu

router = Router("pp")
REG = Needs.REGISTRATION
TITLE, DESC, PHOTO, COST, TRACK = "pp.title", "pp.desc", "pp.photo", "pp.cost", "pp.track"
REASON, MILESTONE, EXPENSE, BUDGET = "pp.reason", "pp.milestone", "pp.expense", "pp.budget"
START_PAYLOAD = "propose"


# ---- submitting -------------------------------------------------------------------------------------------------


@router.command("propose", needs=REG, private_only=True, in_menu=True, start_payload=START_PAYLOAD)
async def propose(ctx: Ctx) -> Sequence[Action]:
    await ctx.set_state(TITLE)
    return [SendText("proposals/ask_title", {"limit": TITLE_MAX}, buttons=_cancel())]


@router.callback("new", needs=REG)
async def propose_button(ctx: Ctx) -> Sequence[Action]:
    """The board's "✍️ 提交提案" button: the same dialog as /propose."""
    return await propose(ctx)


@router.step(TITLE, needs=REG)
async def title_typed(ctx: Ctx) -> Sequence[Action]:
    title = clean_title(ctx.incoming.text)
    await ctx.set_state(DESC, title=title)
    return [SendText("proposals/ask_description", {"limit": DESCRIPTION_MAX}, buttons=_cancel())]


@router.step(DESC, needs=REG)
async def description_typed(ctx: Ctx) -> Sequence[Action]:
    description = clean_description(ctx.incoming.text)
    await ctx.set_state(PHOTO, **ctx.data | {"desc": description})
    skip = keyboard([Button("proposals.btn.skip_photo", data=router.data("nophoto"))],
                    [Button("proposals.btn.cancel", data=router.data("cancel"))])  # fmt: skip
    return [SendText("proposals/ask_photo", buttons=skip)]


@router.step(PHOTO, needs=REG)
async def photo_sent(ctx: Ctx) -> Sequence[Action]:
    """One photo (or an image sent as a file): checked, stripped of its metadata, stored."""
    file_id = (ctx.incoming.photo_file_ids or (ctx.incoming.document_file_id,))[-1]
    if file_id is None:
        skip = keyboard([Button("proposals.btn.skip_photo", data=router.data("nophoto"))])
        return [SendText("proposals/ask_photo_hint", buttons=skip)]
    key = await ctx.services.proposals.add_photo(file_id, ctx.incoming.file_size)
    return await _ask_cost(ctx, photo=key, edit=False)


@router.callback("nophoto", needs=REG)
async def no_photo(ctx: Ctx) -> Sequence[Action]:
    if ctx.state is None or ctx.state.name != PHOTO:
        return [AnswerCallback("errors/stale_button", alert=True)]
    return await _ask_cost(ctx, photo=None, edit=True)


async def _ask_cost(ctx: Ctx, *, photo: str | None, edit: bool) -> list[Action]:
    await ctx.set_state(COST, **ctx.data | {"photo": photo})
    return [(EditText if edit else SendText)("proposals/ask_cost", {"photo": photo is not None}, buttons=_cancel())]


@router.step(COST, needs=REG)
async def cost_typed(ctx: Ctx) -> Sequence[Action]:
    fen = parse_yuan(ctx.incoming.text)
    await ctx.set_state(TRACK, **ctx.data | {"cost": fen})
    rows = [[Button("proposals.btn.track", data=router.data("track", t), label_context={"track": t})] for t in TRACKS]
    return [SendText("proposals/ask_track", {"cost": yuan(fen)}, buttons=keyboard(*rows))]


@router.callback("track", str, needs=REG)
async def track_chosen(ctx: Ctx) -> Sequence[Action]:
    track = str(ctx.args[0])
    if ctx.state is None or ctx.state.name != TRACK or track not in TRACKS:
        return [AnswerCallback("errors/stale_button", alert=True)]
    data = ctx.data | {"track": track}
    await ctx.set_state(TRACK, **data)
    rows = [[Button("proposals.btn.submit", data=router.data("submit")),
             Button("proposals.btn.cancel", data=router.data("cancel"))]]  # fmt: skip
    context = {"title": data["title"], "description": data["desc"], "cost": yuan(int(data["cost"])),
               "track": track, "photo": data.get("photo") is not None}  # fmt: skip
    return [EditText("proposals/confirm", context, buttons=keyboard(*rows))]


@router.callback("submit", needs=REG)
async def submit(ctx: Ctx) -> Sequence[Action]:
    data = ctx.data
    if ctx.state is None or ctx.state.name != TRACK or "track" not in data:
        return [AnswerCallback("errors/stale_button", alert=True)]
    draft = Draft(data["title"], data["desc"], int(data["cost"]), data["track"], data.get("photo"))
    proposal = await ctx.services.proposals.submit(ctx.user_id, draft)
    await ctx.clear_state()
    return [EditText("proposals/submitted", {"title": proposal.title, "id": proposal.id})]


@router.callback("cancel")
async def cancel(ctx: Ctx) -> Sequence[Action]:
    await ctx.clear_state()
    return [EditText("proposals/cancelled")]


# ---- residents: the board, a proposal, support and vote ------------------------------------------------------------


@menu.feature("proposals", needs=REG)
@router.command("proposals", needs=REG, private_only=True, in_menu=True)
async def proposals(ctx: Ctx) -> Sequence[Action]:
    board = await ctx.services.proposals.board(ctx.user_id)
    return [_board(board)]


@router.action(OPEN, needs=REG)
async def open_proposal(ctx: Ctx) -> Sequence[Action]:
    view = await ctx.services.proposals.view(ctx.user_id, int(ctx.args[0]))
    return [AnswerCallback(), _card(view)]


@router.action(SUPPORT, needs=REG)
async def support(ctx: Ctx) -> Sequence[Action]:
    outcome = await ctx.services.proposals.support(ctx.user_id, int(ctx.args[0]))
    view = await ctx.services.proposals.view(ctx.user_id, outcome.proposal.id)
    return [AnswerCallback(), _card(view, outcome="vote_opened" if outcome.vote_opened else "supported")]


@router.action(VOTE, needs=REG)
async def vote(ctx: Ctx) -> Sequence[Action]:
    proposal, _ = await ctx.services.proposals.vote(ctx.user_id, int(ctx.args[0]), str(ctx.args[1]))
    view = await ctx.services.proposals.view(ctx.user_id, proposal.id)
    return [AnswerCallback(), _card(view, outcome="voted")]


# ---- organisers ---------------------------------------------------------------------------------------------------


@router.action(REVIEW_ACCEPT, needs=REG)
async def accept(ctx: Ctx) -> Sequence[Action]:
    proposal = await ctx.services.proposals.review(ctx.user_id, int(ctx.args[0]), accept=True)
    view = await ctx.services.proposals.view(ctx.user_id, proposal.id)
    return [AnswerCallback(), _card(view, outcome="opened")]


@router.action(REVIEW_REJECT, needs=REG)
async def reject(ctx: Ctx) -> Sequence[Action]:
    proposal = await ctx.services.proposals.require_organiser(ctx.user_id, int(ctx.args[0]), "proposal.review")
    await ctx.set_state(REASON, id=proposal.id, kind="reject")
    return [AnswerCallback(), SendText("proposals/ask_reason", _reason_context(proposal.title, "reject"),
                                       buttons=_cancel())]  # fmt: skip


@router.action(DECIDE, needs=REG)
async def decide(ctx: Ctx) -> Sequence[Action]:
    proposal_id, accepted = int(ctx.args[0]), ctx.args[1] == 1
    if accepted:
        proposal = await ctx.services.proposals.decide(ctx.user_id, proposal_id, accepted=True)
        view = await ctx.services.proposals.view(ctx.user_id, proposal.id)
        return [AnswerCallback(), _card(view, outcome="accepted")]
    proposal = await ctx.services.proposals.require_organiser(ctx.user_id, proposal_id, "proposal.decide")
    await ctx.set_state(REASON, id=proposal.id, kind="decide")
    return [AnswerCallback(), SendText("proposals/ask_reason", _reason_context(proposal.title, "decide"),
                                       buttons=_cancel())]  # fmt: skip


@router.step(REASON, needs=REG)
async def reason_typed(ctx: Ctx) -> Sequence[Action]:
    proposal_id, kind = int(ctx.data["id"]), str(ctx.data["kind"])
    service = ctx.services.proposals
    if kind == "reject":
        proposal = await service.review(ctx.user_id, proposal_id, accept=False, reason=ctx.incoming.text)
    else:
        proposal = await service.decide(ctx.user_id, proposal_id, accepted=False, reason=ctx.incoming.text)
    await ctx.clear_state()
    view = await service.view(ctx.user_id, proposal.id)
    return [_card(view, outcome="rejected" if kind == "reject" else "not_accepted")]


@router.callback("ms", int, needs=REG)
async def milestone(ctx: Ctx) -> Sequence[Action]:
    proposal = await ctx.services.proposals.require_organiser(ctx.user_id, int(ctx.args[0]), "proposal.milestone")
    await ctx.set_state(MILESTONE, id=proposal.id)
    return [AnswerCallback(), SendText("proposals/ask_milestone", {"title": proposal.title, "limit": NOTE_MAX},
                                       buttons=_cancel())]  # fmt: skip


@router.step(MILESTONE, needs=REG)
async def milestone_sent(ctx: Ctx) -> Sequence[Action]:
    """A note, or a photo with the note as its caption."""
    service, proposal_id = ctx.services.proposals, int(ctx.data["id"])
    note = clean_note(ctx.incoming.text)  # before the photo is stored: a photo without a note is asked again
    file_id = (ctx.incoming.photo_file_ids or (ctx.incoming.document_file_id,))[-1]
    photo = await service.add_photo(file_id, ctx.incoming.file_size) if file_id else None
    await service.add_milestone(ctx.user_id, proposal_id, note, photo)
    await ctx.clear_state()
    view = await service.view(ctx.user_id, proposal_id)
    return [_card(view, outcome="milestone")]


@router.callback("ex", int, needs=REG)
async def expense(ctx: Ctx) -> Sequence[Action]:
    proposal = await ctx.services.proposals.require_organiser(ctx.user_id, int(ctx.args[0]), "proposal.expense")
    await ctx.set_state(EXPENSE, id=proposal.id)
    return [AnswerCallback(), SendText("proposals/ask_expense", {"title": proposal.title}, buttons=_cancel())]


@router.step(EXPENSE, needs=REG)
async def expense_typed(ctx: Ctx) -> Sequence[Action]:
    service, proposal_id = ctx.services.proposals, int(ctx.data["id"])
    await service.add_expense(ctx.user_id, proposal_id, ctx.incoming.text)
    await ctx.clear_state()
    view = await service.view(ctx.user_id, proposal_id)
    return [_card(view, outcome="expense")]


@router.callback("bg", int, needs=REG)
async def budget(ctx: Ctx) -> Sequence[Action]:
    proposal = await ctx.services.proposals.require_organiser(ctx.user_id, int(ctx.args[0]), "proposal.budget")
    await ctx.set_state(BUDGET, id=proposal.id)
    context = {"title": proposal.title, "budget": yuan(proposal.budget_fen or 0)}
    return [AnswerCallback(), SendText("proposals/ask_budget", context, buttons=_cancel())]


@router.step(BUDGET, needs=REG)
async def budget_typed(ctx: Ctx) -> Sequence[Action]:
    service, proposal_id = ctx.services.proposals, int(ctx.data["id"])
    await service.set_budget(ctx.user_id, proposal_id, ctx.incoming.text)
    await ctx.clear_state()
    view = await service.view(ctx.user_id, proposal_id)
    return [_card(view, outcome="budget")]


@router.command("proposalrules", needs=REG, private_only=True)
async def rules(ctx: Ctx) -> Sequence[Action]:
    """``/proposalrules``: the community's rules; ``/proposalrules <supports> <collection days> <vote days>``
    (organisers) changes them."""
    service = ctx.services.proposals
    words = (ctx.incoming.args or "").split()
    changed = False
    if words:
        if len(words) != 3 or not all(w.isdigit() for w in words):
            raise ProposalError("bad_rules")
        await service.set_rules(ctx.user_id, Rules(int(words[0]), int(words[1]), int(words[2])))
        changed = True
    current, community = await service.rules_of(ctx.user_id)
    context = {"threshold": current.threshold, "collect_days": current.collect_days, "vote_days": current.vote_days,
               "community": community.name, "changed": changed}  # fmt: skip
    return [SendText("proposals/rules", context)]


# ---- rendering ------------------------------------------------------------------------------------------------------


def _board(board: Board) -> Action:
    sections = {
        "to_review": board.to_review,
        "to_decide": board.to_decide,
        "voting": board.voting,
        "collecting": board.collecting,
        "accepted": board.accepted,
        "mine": board.mine,
    }
    rows = [
        [Button("proposals.btn.item", data=router.encode_ref(OPEN, p.id),
                label_context={"title": p.title, "status": p.status.value, "supports": p.supports,
                               "threshold": p.threshold})]
        for items in sections.values() for p in items
    ]  # fmt: skip
    context: dict[str, Any] = {
        name: [card(p, board.community, board.zone) for p in items] for name, items in sections.items()
    }
    context |= {"community": board.community.name, "organiser": board.organiser}
    rows = [*rows[:40], [Button("proposals.btn.new", data=router.data("new"))]]
    return SendText("proposals/board", context, buttons=keyboard(*rows))


def _card(view: View, outcome: str | None = None) -> Action:
    proposal = view.proposal
    rows: list[list[Button]] = []
    if view.can_support:
        rows.append([Button("proposals.btn.support", data=router.encode_ref(SUPPORT, proposal.id))])
    if view.can_vote:
        rows.append([Button(f"proposals.btn.vote_{c}", data=router.encode_ref(VOTE, proposal.id, c))
                     for c in ("for", "against", "abstain")])  # fmt: skip
    if view.can_review:
        rows.append([Button("proposals.btn.accept", data=router.encode_ref(REVIEW_ACCEPT, proposal.id)),
                     Button("proposals.btn.reject", data=router.encode_ref(REVIEW_REJECT, proposal.id))])  # fmt: skip
    if view.can_decide:
        rows.append([Button("proposals.btn.decide_yes", data=router.encode_ref(DECIDE, proposal.id, 1)),
                     Button("proposals.btn.decide_no", data=router.encode_ref(DECIDE, proposal.id, 0))])  # fmt: skip
    if view.can_account:
        rows.append([Button("proposals.btn.add_milestone", data=router.data("ms", proposal.id)),
                     Button("proposals.btn.add_expense", data=router.data("ex", proposal.id))])  # fmt: skip
        rows.append([Button("proposals.btn.set_budget", data=router.data("bg", proposal.id))])
    account = view.account
    context = card(proposal, view.community, view.zone) | {
        "outcome": outcome,
        "supported": view.supported,
        "my_vote": view.vote.value if view.vote else None,
        "mine": view.mine,
        "organiser": view.organiser,
        "milestones": [{"note": m.note, "at": m.at.astimezone(view.zone), "photo": m.photo is not None}
                       for m in account.milestones],
        "expenses": [{"amount": yuan(e.amount_fen), "purpose": e.purpose, "at": e.at.astimezone(view.zone)}
                     for e in account.expenses],
        "spent": yuan(account.spent_fen),
        "over_budget": account.over_budget,
    }  # fmt: skip
    return SendText("proposals/card", context, buttons=keyboard(*rows))


def _reason_context(title: str, kind: str) -> dict[str, Any]:
    return {"title": title, "kind": kind, "limit": REASON_MAX}


def _cancel() -> tuple[tuple[Button, ...], ...]:
    return keyboard([Button("proposals.btn.cancel", data=router.data("cancel"))])
