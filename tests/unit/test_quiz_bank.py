"""The question-bank format: the real bank, bad fixtures, loading and importing."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from content.quiz_bank import (
    TRACKS,
    BankError,
    check_bank,
    import_questions,
    load_bank,
    load_cards,
)

REPO = Path(__file__).resolve().parents[2]
CONTENT = REPO / "content"
BAD_BANKS = REPO / "tests" / "fixtures" / "bad_banks"

QUESTION: dict[str, Any] = {
    "id": "civ-001",
    "difficulty": 1,
    "tags": ["文明行为"],
    "correct": [1],
    "source": {
        "zh_Hans": "《新时代公民道德建设实施纲要》",
        "en": "Outline for Civic Morality in the New Era",
    },
    "zh_Hans": {
        "question": "排队时有人插队，怎么做比较好？",
        "options": ["跟着插队", "礼貌提醒"],
        "explanation": "礼貌提醒。",
    },
    "en": {
        "question": "Someone jumps the queue. What is best?",
        "options": ["Jump too", "Remind politely"],
        "explanation": "Remind them politely.",
    },
}
CARD: dict[str, Any] = {
    "id": "civ-card-01",
    "source": {
        "zh_Hans": "《新时代公民道德建设实施纲要》",
        "en": "Outline for Civic Morality in the New Era",
    },
    "quiz_tags": ["文明行为"],
    "zh_Hans": {"title": "文明排队", "body": "排队先来后到。"},
    "en": {"title": "Queue politely", "body": "First come, first served."},
}


def question(qid: str = "civ-001", **changes: Any) -> dict[str, Any]:
    item = copy.deepcopy(QUESTION)
    item.update(id=qid, **changes)
    return item


def write(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def small_bank(root: Path, count: int = 2) -> Path:
    questions = [question(f"civ-{n:03d}") for n in range(1, count + 1)]
    write(root / "questions" / "civilised.yaml", {"track": "civilised", "questions": questions})
    write(root / "cards" / "civilised.yaml", {"track": "civilised", "cards": [CARD]})
    return root


def present_tracks() -> list[Any]:
    return [t for t in TRACKS if any((CONTENT / d / f"{t}.yaml").exists() for d in ("questions", "cards"))]


def test_check_real_bank_present_tracks_pass() -> None:
    tracks = present_tracks()
    assert {"civilised", "sanitary"} <= set(tracks)
    assert check_bank(CONTENT, tracks=tracks) == []


def test_check_real_bank_all_tracks_pass() -> None:
    if len(present_tracks()) < len(TRACKS):
        pytest.skip("content for some tracks is not written yet")
    assert check_bank(CONTENT) == []


def test_load_real_bank_returns_questions_and_cards() -> None:
    bank, cards = load_bank(CONTENT), load_cards(CONTENT)
    assert len(bank.questions("civilised")) >= 40
    assert len(cards["sanitary"]) >= 8
    assert bank.get("civ-001") is not None


# Residents' answers and spaced-repetition progress are stored by question id. These are the ids of the bank before
# the December 2026 rewrite (options made fair, topics added): each kept its meaning, so each must still be there.
EARLIER_IDS = {
    **{f"civ-{n:03d}": "civilised" for n in range(1, 56)},
    **{f"san-{n:03d}": "sanitary" for n in range(1, 57)},
    **{f"gar-{n:03d}": "garden" for n in range(1, 49)},
    **{f"food-{n:03d}": "food_safety" for n in range(1, 53)},
}


def test_rewrite_keeps_every_earlier_question_id_in_its_track() -> None:
    bank = load_bank(CONTENT)
    in_track = {q.id: track for track in bank.tracks for q in bank.questions(track)}
    assert {qid: in_track.get(qid) for qid in EARLIER_IDS} == EARLIER_IDS


def test_every_track_has_at_least_sixty_questions_in_both_languages() -> None:
    bank = load_bank(CONTENT)
    for track in TRACKS:
        questions = bank.questions(track)
        assert len(questions) >= 60, track
        assert all(q.text("zh_Hans").question and q.text("en").question for q in questions)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("duplicate_id", "civ-001: duplicate id"),
        ("answer_out_of_range", "civ-002: correct: answer index 2 is out of range"),
        ("missing_en", "civ-002: missing locale 'en'"),
        ("option_too_long", "civ-002: en.options[1] is too long"),
        ("too_few_options", "civ-002: zh_Hans.options: 1 option(s)"),
        ("track_mismatch", "track mismatch: the file says 'sanitary' but its name says 'civilised'"),
    ],
)
def test_check_bad_bank_reports_problem(case: str, expected: str) -> None:
    errors = check_bank(BAD_BANKS / case, min_questions=0, min_cards=0)
    assert errors, case
    assert all(e.startswith("questions/civilised.yaml: ") for e in errors)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("case", ["duplicate_id", "answer_out_of_range", "missing_en", "track_mismatch"])
def test_load_bad_bank_raises(case: str) -> None:
    with pytest.raises(BankError):
        load_bank(BAD_BANKS / case)


def test_check_small_bank_passes_with_small_minimums(tmp_path: Path) -> None:
    assert check_bank(small_bank(tmp_path), tracks=["civilised"], min_questions=2, min_cards=1) == []


def test_check_small_bank_reports_too_few(tmp_path: Path) -> None:
    errors = check_bank(small_bank(tmp_path), tracks=["civilised", "garden"])
    assert "questions/civilised.yaml: 2 valid questions, need at least 40" in errors
    assert "cards/garden.yaml: 0 valid cards, need at least 8 (file missing)" in errors


def test_check_multi_answer_without_marker_reports_problem(tmp_path: Path) -> None:
    write(
        tmp_path / "questions" / "civilised.yaml",
        {"track": "civilised", "questions": [question(correct=[0, 1])]},
    )
    errors = check_bank(tmp_path, min_questions=0, min_cards=0)
    assert any("zh_Hans.question: several correct answers" in e for e in errors), errors
    assert any("en.question: several correct answers" in e for e in errors), errors


def test_check_wrong_prefix_and_unknown_card_tag_reported(tmp_path: Path) -> None:
    small_bank(tmp_path)
    write(tmp_path / "questions" / "garden.yaml", {"track": "garden", "questions": [question("san-001")]})
    write(
        tmp_path / "cards" / "civilised.yaml",
        {"track": "civilised", "cards": [{**CARD, "quiz_tags": ["无"]}]},
    )
    errors = check_bank(tmp_path, min_questions=0, min_cards=0)
    assert any("san-001: id prefix 'san' does not match track 'garden'" in e for e in errors), errors
    assert any("civ-card-01: quiz tag '无' matches no question" in e for e in errors), errors


def test_check_duplicate_yaml_key_reported(tmp_path: Path) -> None:
    (tmp_path / "questions").mkdir()
    (tmp_path / "questions" / "civilised.yaml").write_text("track: civilised\ntrack: garden\nquestions: []\n")
    errors = check_bank(tmp_path, min_questions=0, min_cards=0)
    assert len(errors) == 1
    assert "duplicate key(s) track" in errors[0]


def test_import_valid_file_adds_questions(tmp_path: Path) -> None:
    root = small_bank(tmp_path / "bank")
    (root / "questions" / "civilised.yaml").write_text(
        "# kept\n" + (root / "questions" / "civilised.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    src = write(tmp_path / "new.yaml", {"track": "civilised", "questions": [question("civ-101"), question("civ-102")]})
    assert import_questions(src, root) == 2
    bank = load_bank(root)
    assert [q.id for q in bank.questions("civilised")] == ["civ-001", "civ-002", "civ-101", "civ-102"]
    assert (root / "questions" / "civilised.yaml").read_text(encoding="utf-8").startswith("# kept\n")


def test_import_new_track_creates_file(tmp_path: Path) -> None:
    root = small_bank(tmp_path / "bank")
    item = question("gar-001")
    src = write(tmp_path / "new.yaml", {"track": "garden", "questions": [item]})
    assert import_questions(src, root) == 1
    assert load_bank(root).get("gar-001") is not None


@pytest.mark.parametrize(
    ("questions", "expected"),
    [
        ([question("civ-002")], "civ-002: duplicate id"),
        ([question("civ-101"), question("civ-101")], "civ-101: duplicate id"),
        ([question("civ-101", correct=[5])], "answer index 5 is out of range"),
        ([question("san-101")], "id prefix 'san' does not match track 'civilised'"),
        ([], "no questions to import"),
    ],
)
def test_import_bad_file_leaves_bank_unchanged(tmp_path: Path, questions: list[Any], expected: str) -> None:
    root = small_bank(tmp_path / "bank")
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    src = write(tmp_path / "new.yaml", {"track": "civilised", "questions": questions})
    with pytest.raises(BankError) as caught:
        import_questions(src, root)
    assert any(expected in e for e in caught.value.errors), caught.value.errors
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
