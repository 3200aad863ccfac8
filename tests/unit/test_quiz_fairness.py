"""``sicheng content stats``: the figures that tell whether a bank can be passed by guessing (issue: the longest
option was the answer three times in four)."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app
from content.quiz_bank import Question
from content.quiz_fairness import fairness

SOURCE = {"zh_Hans": "测试来源", "en": "test source"}


def question(number: int, options: list[str], correct: list[int]) -> Question:
    several = len(correct) > 1
    text = {
        "question": f"问题{number}？" + ("（多选）" if several else ""),
        "options": options,
        "explanation": "解释。",
    }
    english = f"Question {number}?" + (" (all that apply)" if several else "")
    return Question.model_validate(
        {
            "id": f"civ-{number:03d}",
            "difficulty": 1,
            "correct": correct,
            "source": SOURCE,
            "zh_Hans": text,
            "en": text | {"question": english},
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


def test_content_stats_prints_every_track_in_both_languages() -> None:
    result = CliRunner().invoke(app, ["content", "stats"])
    assert result.exit_code == 0, result.output
    for track in ("civilised", "sanitary", "garden", "food_safety"):
        assert f"{track:<12} zh_Hans" in result.output and f"{track:<12} en" in result.output
    assert "goals: longest ≤ 35%" in result.output
