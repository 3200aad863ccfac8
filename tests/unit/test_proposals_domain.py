"""居民提案制, the pure rules: the state machine, what residents type (titles, costs, expenses) and the tally."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.proposals import (
    MOVES,
    Choice,
    Draft,
    Proposal,
    ProposalError,
    ProposalStatus,
    Rules,
    Tally,
    can_move,
    check_move,
    clean_title,
    parse_expense,
    parse_yuan,
    tally,
    yuan,
)

S = ProposalStatus
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_state_machine_allows_only_the_documented_steps() -> None:
    assert can_move(S.SUBMITTED, S.COLLECTING) and can_move(S.SUBMITTED, S.REJECTED)
    assert can_move(S.COLLECTING, S.VOTING) and can_move(S.COLLECTING, S.EXPIRED)
    assert can_move(S.VOTING, S.VOTED)
    assert can_move(S.VOTED, S.ACCEPTED) and can_move(S.VOTED, S.NOT_ACCEPTED)
    assert not can_move(S.SUBMITTED, S.VOTING)
    assert not can_move(S.COLLECTING, S.ACCEPTED)
    for final in (S.REJECTED, S.EXPIRED, S.ACCEPTED, S.NOT_ACCEPTED):
        assert MOVES[final] == frozenset()
    assert set(MOVES) == set(S)


def test_check_move_from_a_final_state_is_refused_with_wrong_state() -> None:
    with pytest.raises(ProposalError) as refused:
        check_move(S.REJECTED, S.COLLECTING)
    assert refused.value.code == "wrong_state" and refused.value.context["status"] == "rejected"


@pytest.mark.parametrize(
    ("typed", "fen"),
    [("5000", 500_000), ("5,000.50", 500_050), ("¥800", 80_000), ("1200元", 120_000), ("0", 0), ("０.5", 50)],
)
def test_parse_yuan_reads_what_people_type(typed: str, fen: int) -> None:
    assert parse_yuan(typed) == fen  # full-width digits from a Chinese keyboard too


@pytest.mark.parametrize(
    ("typed", "code"),
    [("-5", "cost_negative"), ("－300", "cost_negative"), ("99999999999", "cost_absurd"), ("很多", "cost_not_number"),
     ("1.234", "cost_not_number"), ("", "cost_not_number")],
)  # fmt: skip
def test_parse_yuan_refuses_negative_absurd_and_non_numbers(typed: str, code: str) -> None:
    with pytest.raises(ProposalError) as refused:
        parse_yuan(typed)
    assert refused.value.code == code


def test_parse_expense_needs_an_amount_and_what_it_was_for() -> None:
    assert parse_expense("3200 购买长椅 4 张") == (320_000, "购买长椅 4 张")
    with pytest.raises(ProposalError) as no_purpose:
        parse_expense("3200")
    assert no_purpose.value.code == "empty"
    with pytest.raises(ProposalError) as zero:
        parse_expense("0 什么都没买")
    assert zero.value.code == "amount_zero"


def test_title_is_trimmed_to_one_line_and_bounded() -> None:
    assert clean_title("  口袋公园\n改造  ") == "口袋公园 改造"
    with pytest.raises(ProposalError) as short:
        clean_title("改造")
    assert short.value.code == "too_short"
    with pytest.raises(ProposalError) as long:
        clean_title("长" * 61)
    assert long.value.code == "too_long" and long.value.context["limit"] == 60


def test_draft_with_an_unknown_track_is_refused() -> None:
    with pytest.raises(ProposalError) as bad:
        Draft("智慧充电桩安装", "在 5 号楼车棚安装智慧充电桩，解决电动车充电难。", 100, "parking")
    assert bad.value.code == "bad_track"


def test_rules_out_of_range_are_refused() -> None:
    with pytest.raises(ProposalError):
        Rules(0, 30, 7)
    with pytest.raises(ProposalError):
        Rules(10, 91, 7)
    with pytest.raises(ProposalError):
        Rules(10, 30, 0)


def test_tally_counts_choices_and_carries_on_more_for_than_against() -> None:
    counted = tally([Choice.FOR, Choice.FOR, Choice.AGAINST, Choice.ABSTAIN, Choice.ABSTAIN])
    assert counted == Tally(2, 1, 2) and counted.total == 5 and counted.carried
    assert not Tally(1, 1, 5).carried


def test_vote_is_open_only_inside_its_window() -> None:
    proposal = Proposal(1, 1, 1, "口袋公园改造", "把空地改成口袋公园。", 0, "garden", S.VOTING, NOW,
                        vote_starts_at=NOW, vote_ends_at=NOW + timedelta(days=7))  # fmt: skip
    assert proposal.vote_open(NOW) and proposal.vote_open(NOW + timedelta(days=6, hours=23))
    assert not proposal.vote_open(NOW + timedelta(days=7))
    assert not proposal.vote_open(NOW - timedelta(seconds=1))


def test_yuan_shows_whole_amounts_without_cents() -> None:
    assert yuan(500_000) == "5000" and yuan(500_050) == "5000.50" and yuan(5) == "0.05"
