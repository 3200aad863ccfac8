"""The pure points rules: caps, local days and weeks, FIFO lots and expiry, redemption states, codes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.points import (
    CapKind,
    InsufficientPoints,
    Lot,
    Rule,
    Wallet,
    add_months,
    apply_caps,
    consume,
    day_start,
    expiring_soon,
    mask_name,
    week_start,
)
from bot.domain.rewards import (
    CODE_ALPHABET,
    OutOfStock,
    RedemptionStatus,
    Reward,
    RewardUnavailable,
    can_move,
    new_code,
    normalise_code,
    refunds,
    show_code,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_apply_caps_eleventh_point_of_day_is_capped() -> None:
    grant = apply_caps(Rule(1, daily_cap=10), 1, earned_today=10, earned_week=10)
    assert (grant.amount, grant.capped_by, grant.cap) == (0, CapKind.DAILY, 10)


def test_apply_caps_weekly_cap_wins_when_tighter() -> None:
    grant = apply_caps(Rule(5, daily_cap=20, weekly_cap=12), 2, earned_today=0, earned_week=5)
    assert (grant.requested, grant.amount, grant.capped_by) == (10, 7, CapKind.WEEKLY)


def test_apply_caps_without_caps_credits_everything() -> None:
    assert apply_caps(Rule(2), 3, 100, 100).amount == 6


def test_day_start_uses_shanghai_midnight() -> None:
    now = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 March in Shanghai
    assert day_start(now, SHANGHAI) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_week_start_is_local_monday() -> None:
    sunday_night = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)  # 23:00 Sunday 8 March in Shanghai
    assert week_start(sunday_night, SHANGHAI) == datetime(2026, 3, 1, 16, 0, tzinfo=UTC)


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 1) == datetime(2027, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 30, tzinfo=UTC), 15) == datetime(2028, 2, 29, tzinfo=UTC)


def test_consume_spends_soonest_expiry_first_and_never_expiring_last() -> None:
    lots = [Lot(1, 5, None), Lot(2, 5, T0 + timedelta(days=9)), Lot(3, 5, T0 + timedelta(days=3))]
    assert consume(lots, 7) == [(3, 5), (2, 2)]


def test_consume_more_than_held_raises_insufficient() -> None:
    with pytest.raises(InsufficientPoints):
        consume([Lot(1, 2, None)], 3)


def test_expiring_soon_lists_only_lots_inside_window() -> None:
    lots = [Lot(1, 5, T0 + timedelta(days=40)), Lot(2, 5, T0 + timedelta(days=10)), Lot(3, 0, T0)]
    assert [lot.id for lot in expiring_soon(lots, T0, 30)] == [2]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("credit"), st.integers(1, 50), st.integers(0, 400)),
        st.tuples(st.just("debit"), st.integers(1, 80), st.just(0)),
        st.tuples(st.just("expire"), st.integers(0, 400), st.just(0)),
    ),
    max_size=40,
)


@given(operations)
def test_wallet_any_sequence_keeps_balance_equal_to_entries_and_lots(ops: list[tuple[str, int, int]]) -> None:
    wallet = Wallet()
    for kind, amount, days in ops:
        if kind == "credit":
            wallet.credit(amount, T0 + timedelta(days=days) if days else None)
        elif kind == "debit":
            if wallet.balance >= amount:
                wallet.debit(amount)
            else:
                with pytest.raises(InsufficientPoints):
                    wallet.debit(amount)
        else:
            wallet.expire(T0 + timedelta(days=amount))
        assert wallet.balance == sum(lot.remaining for lot in wallet.lots.values()) >= 0


def test_redemption_moves_only_from_reserved_and_only_once() -> None:
    assert can_move(RedemptionStatus.RESERVED, RedemptionStatus.FULFILLED)
    assert not can_move(RedemptionStatus.FULFILLED, RedemptionStatus.CANCELLED)
    assert not can_move(RedemptionStatus.CANCELLED, RedemptionStatus.FULFILLED)
    assert refunds(RedemptionStatus.EXPIRED) and not refunds(RedemptionStatus.FULFILLED)


def test_reward_check_redeemable_explains_refusal() -> None:
    reward = Reward(1, 1, "haircut", {"zh_Hans": "理发"}, 30, stock=0)
    with pytest.raises(OutOfStock):
        reward.check_redeemable(T0, 0)
    later = Reward(1, 1, "haircut", {"zh_Hans": "理发"}, 30, active_from=T0 + timedelta(days=1))
    with pytest.raises(RewardUnavailable):
        later.check_redeemable(T0, 0)
    assert later.title("en") == "理发"


@given(st.integers(0, 2**32))
def test_new_code_is_normalisable_and_unambiguous(seed: int) -> None:
    code = new_code(random.Random(seed))
    assert normalise_code(show_code(code).lower()) == code
    assert not set(code) & set("0O1IL")


def test_normalise_code_rejects_other_text() -> None:
    assert normalise_code("ABCD-EFG") is None and normalise_code("ABCD-EFG0") is None
    assert all(ch in CODE_ALPHABET for ch in "ABCDEFGH")


def test_mask_name_keeps_first_character() -> None:
    assert (mask_name("李小明"), mask_name(None)) == ("李**", "***")
