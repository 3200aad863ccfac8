"""Quiz rules without storage: spaced repetition on an injected clock, selection, option order, figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import InvalidInput
from bot.domain.quiz import (
    AlreadyAnswered,
    NotYourRound,
    Question,
    QuestionText,
    Review,
    RoundOver,
    numbered,
    option_order,
    pick,
    schedule,
    to_bank,
    to_shown,
)
from bot.domain.quiz_figures import ResidentProgress, awareness, knows, leaderboard
from bot.domain.quiz_rounds import Round, RoundStatus

T0 = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def question(qid: str, correct: tuple[int, ...] = (1,), tags: tuple[str, ...] = ()) -> Question:
    text = QuestionText(f"Q {qid}?", ("a", "b", "c", "d"), "because")
    return Question(qid, "garden", frozenset(correct), {"zh_Hans": text, "en": text}, frozenset(tags))


POOL = [question(f"gar-{i:03d}") for i in range(1, 11)]


class Clock:
    """The injected clock: the schedule only ever sees the times it is given."""

    def __init__(self) -> None:
        self.now = T0

    def advance(self, days: float) -> datetime:
        self.now += timedelta(days=days)
        return self.now


def test_wrong_answer_comes_back_after_one_then_three_then_seven_days() -> None:
    clock, q = Clock(), POOL[0]
    review = schedule(None, q, False, clock.now)
    assert (review.step, review.due_at) == (0, T0 + DAY)
    review = schedule(review, q, True, clock.advance(1))
    assert review.due_at == clock.now + 3 * DAY
    review = schedule(review, q, True, clock.advance(3))
    assert review.due_at == clock.now + 7 * DAY
    review = schedule(review, q, True, clock.advance(7))
    assert (review.step, review.due_at, review.times) == (None, None, 4)


def test_a_slip_on_the_ladder_starts_it_again() -> None:
    clock, q = Clock(), POOL[0]
    review = schedule(schedule(None, q, False, clock.now), q, True, clock.advance(1))
    review = schedule(review, q, False, clock.advance(3))
    assert (review.step, review.due_at, review.last_correct) == (0, clock.now + DAY, False)


def test_right_first_time_is_not_repeated() -> None:
    review = schedule(None, POOL[0], True, T0)
    assert (review.step, review.due_at, review.last_correct) == (None, None, True)


def test_no_question_repeats_until_the_bank_is_exhausted() -> None:
    history: dict[str, Review] = {}
    seen: list[str] = []
    clock = Clock()
    for _ in range(2):
        for q in pick(POOL, history, clock.advance(0.01), 5, "r1:garden"):
            seen.append(q.id)
            history[q.id] = schedule(history.get(q.id), q, True, clock.advance(0.001))
    assert sorted(seen) == sorted(q.id for q in POOL)
    third = pick(POOL, history, clock.advance(0.01), 5, "r1:garden")
    assert [q.id for q in third] == seen[:5]  # least recently answered first


def test_due_repetitions_come_first_and_waiting_ones_last() -> None:
    history = {
        "gar-001": Review("gar-001", "garden", 1, False, T0 - 2 * DAY, 0, T0 - DAY),  # due
        "gar-002": Review("gar-002", "garden", 1, False, T0, 0, T0 + DAY),  # not yet due
    }
    picked = [q.id for q in pick(POOL, history, T0, 10, "seed")]
    assert picked[0] == "gar-001"
    assert picked[-1] == "gar-002"


def test_a_cards_tags_put_its_questions_first() -> None:
    pool = [*POOL, question("gar-050", tags=("口袋公园",))]
    picked = pick(pool, {}, T0, 3, "seed", focus=frozenset({"口袋公园"}))
    assert picked[0].id == "gar-050"


def test_option_order_is_stable_per_person_and_maps_back() -> None:
    order = option_order("gar-001", "r7", 4)
    assert order == option_order("gar-001", "r7", 4)
    assert sorted(order) == [0, 1, 2, 3]
    orders = {option_order("gar-001", f"r{i}", 4) for i in range(20)}
    assert len(orders) > 1  # people do not all see the answer in the same place
    shown = to_shown(order, {1})
    assert to_bank(order, shown) == frozenset({1})
    with pytest.raises(InvalidInput):
        to_bank(order, [4])


def test_long_options_become_numbered_buttons() -> None:
    assert not numbered(["可回收物", "有害垃圾"])
    assert numbered(["用流动水和肥皂（洗手液），把手心、手背、指缝、指尖都搓洗干净", "b"])


def test_round_turns_are_checked() -> None:
    round_ = Round(5, resident_id=1, track="garden", question_ids=("a", "b", "c"), position=1)
    round_.check_turn(1, 1)
    with pytest.raises(NotYourRound):
        round_.check_turn(2, 1)
    with pytest.raises(AlreadyAnswered):
        round_.check_turn(1, 0)
    with pytest.raises(RoundOver):
        round_.check_turn(1, 2)
    with pytest.raises(AlreadyAnswered):
        Round(5, 1, "garden", ("a",), 1, status=RoundStatus.FINISHED).check_turn(1, 0)


@pytest.mark.parametrize(
    ("answered", "correct", "expected"), [(7, 7, False), (8, 7, True), (8, 6, False), (10, 8, True), (10, 7, False)]
)
def test_knowing_a_track_needs_eight_answers_and_eighty_percent(answered: int, correct: int, expected: bool) -> None:
    assert knows(answered, correct) is expected


def test_awareness_per_community_and_building() -> None:
    people = [
        ResidentProgress(1, "1号楼", {"garden": (8, 8), "sanitary": (8, 5)}, 10, 8),
        ResidentProgress(2, "1号楼", {"garden": (3, 3)}, 2, 1),
        ResidentProgress(3, "2号楼", {}, 0, 0),
        ResidentProgress(4, None, {"garden": (9, 8)}, 0, 0),
    ]
    total, first, second = awareness(people)
    assert (total.scope, total.registered, total.knows["garden"], total.knows["sanitary"]) == (None, 4, 2, 0)
    assert total.share("garden") == 0.5
    assert (total.participants, total.participation, total.average) == (2, 0.5, 9 / 12)
    assert (first.scope, first.registered, first.knows["garden"], first.participation) == ("1号楼", 2, 1, 1.0)
    assert (second.scope, second.share("garden"), second.average) == ("2号楼", 0.0, 0.0)


def test_leaderboard_orders_by_correct_then_fewest_tries() -> None:
    votes = [(1, "李**", True), (2, "王**", True), (2, "王**", True), (3, "张**", False), (1, "李**", False)]
    board = leaderboard(votes)
    assert [(s.name, s.correct, s.answered) for s in board] == [("王**", 2, 2), ("李**", 1, 2), ("张**", 0, 1)]
