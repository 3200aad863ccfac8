"""``sicheng content stats``: the figures that tell whether a bank can be passed by guessing (issue: the longest
option was the answer three times in four)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from content.quiz_bank import Question
from content.quiz_fairness import fairness

SOURCE = {"zh_Hans": "测试来源", "en": "test source"}
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def question(number: int, options: list[str], correct: list[int], english: list[str] | None = None) -> Question:
    several = len(correct) > 1
    text = {
        "question": f"问题{number}？" + ("（多选）" if several else ""),
        "options": options,
        "explanation": "解释。",
    }
    asked = f"Question {number}?" + (" (all that apply)" if several else "")
    return Question.model_validate(
        {
            "id": f"civ-{number:03d}",
            "difficulty": 1,
            "correct": correct,
            "source": SOURCE,
            "zh_Hans": text,
            "en": text | {"question": asked, "options": english or options},
        }
    )


def test_bank_whose_answer_is_always_the_longest_is_flagged() -> None:
    bank = [question(i, ["短", "也短", "正确答案最长的一项", "短的"], [2]) for i in range(1, 9)]
    figures = fairness("civilised", bank, "zh_Hans")
    assert figures.longest_score == 1.0 and figures.strictly_longest == 1.0
    assert figures.positions == (0.0, 0.0, 1.0, 0.0)
    problems = " ".join(figures.problems())
    assert "picking the longest option scores 100%" in problems and "option 3 is the answer in 100%" in problems


def test_balanced_bank_meets_every_goal() -> None:
    options = ["蓝色桶", "红色桶", "绿色桶", "灰色桶"]  # same length: no option stands out
    bank = [question(i, options, [i % 4]) for i in range(1, 9)]
    figures = fairness("civilised", bank, "en")
    assert figures.positions == (0.25, 0.25, 0.25, 0.25)
    assert figures.length_ratio == 1.0 and figures.strictly_longest == 0.0
    assert figures.problems() == []


def test_multi_select_mix_counts_how_many_options_are_correct() -> None:
    bank = [
        question(1, ["甲项", "乙项", "丙项", "丁项"], [0, 1]),
        question(2, ["甲项", "乙项", "丙项", "丁项"], [0, 1, 3]),
    ]
    assert fairness("civilised", bank, "zh_Hans").multi_mix == {"2/4": 1, "3/4": 1}


def test_hint_word_only_in_the_answer_counts_and_misses_the_goal() -> None:
    bank = [
        question(1, ["按规定投放", "随手投放", "混合投放", "堆放楼道"], [0], ["Per regulations", "A", "B", "C"]),
        question(2, ["依法处理", "必须报告", "置之不理", "自行处理"], [0], ["Report it", "You must report", "D", "E"]),
        question(3, ["甲项", "乙项", "丙项", "丁项"], [2], ["F", "G", "Report promptly", "H"]),
        question(4, ["甲项", "乙项", "丙项", "丁项"], [3]),
    ]
    chinese, english = fairness("civilised", bank, "zh_Hans"), fairness("civilised", bank, "en")
    # 规定 only in the answer counts; 依法 counts too although a distractor has 必须 (another word)
    assert chinese.hints == 0.5 and "only the answer has a hint word" in " ".join(chinese.problems())
    # "must" in a distractor, not in the answer: no hint; "regulations" and "promptly" only in answers: hints
    assert english.hints == 0.5


def test_multi_select_all_but_one_correct_misses_the_goal_only_when_most_are() -> None:
    options = ["甲项", "乙项", "丙项", "丁项"]
    mixed = [question(1, options, [0, 1, 2]), question(2, options, [0, 1])]
    most = [*mixed, question(3, options, [1, 2, 3])]
    assert fairness("civilised", mixed, "zh_Hans").problems() == []
    problems = fairness("civilised", most, "zh_Hans").problems()
    assert problems == [
        "2 of 3 multi-select questions have every option but one correct (civ-001, civ-003; goal: at most 50%)"
    ]


def test_content_stats_prints_hints_and_says_check_enforces_goals() -> None:
    result = CliRunner().invoke(app, ["content", "stats", "--root", str(FIXTURES / "unfair_bank" / "hint_words")])
    assert result.exit_code == 0, result.output
    assert "hints" in result.output.splitlines()[1]
    assert "100%  —  ✗" in result.output  # the hints column, then the multi-select mix
    last = result.output.strip().splitlines()[-1]
    assert "`sicheng content check` fails" in last and "not yet enforced" not in result.output


def test_content_stats_fair_bank_meets_every_goal() -> None:
    result = CliRunner().invoke(app, ["content", "stats", "--root", str(FIXTURES / "fair_bank")])
    assert result.output.strip().splitlines()[-1] == "all 2 track-languages meet every goal"


def test_content_stats_prints_every_track_in_both_languages() -> None:
    result = CliRunner().invoke(app, ["content", "stats"])
    assert result.exit_code == 0, result.output
    for track in ("civilised", "sanitary", "garden", "food_safety"):
        assert f"{track:<12} zh_Hans" in result.output and f"{track:<12} en" in result.output
    assert "goals: longest ≤ 35%" in result.output
