"""The survey domain without storage: questions typed as lines, answers checked, and the index's arithmetic."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.surveys import (
    Progress,
    Question,
    QuestionKind,
    Response,
    Survey,
    SurveyError,
    parse_questions,
    tally,
)


def test_typed_lines_become_questions_with_kinds_options_limits_and_optional_marks() -> None:
    questions = parse_questions(
        "打分 满意吗？\n单选：多久一次？ ｜ 每周 ｜ 每月\n多选? 设施 | 充电桩 | 快递柜\n填空(80)? 建议", "zh_Hans"
    )
    assert [(q.kind, q.required, q.limit, len(q.options)) for q in questions] == [
        (QuestionKind.SCALE, True, 200, 0),
        (QuestionKind.SINGLE, True, 200, 2),
        (QuestionKind.MULTI, False, 200, 2),
        (QuestionKind.TEXT, False, 80, 0),
    ]


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("打分 好吗\n问答 哪里脏？", "bad_line", 2),
        ("单选 只有一个选项 | 是", "bad_options", 1),
        ("打分 满意吗 | 多余的选项", "bad_options", 1),
        ("填空(900) 太长的上限", "bad_limit", 1),
        ("填空? 都是选答", "all_optional", None),
        ("", "no_questions", None),
    ],
)
def test_unreadable_lines_are_refused_with_the_line(text: str, code: str, line: int | None) -> None:
    with pytest.raises(SurveyError) as refused:
        parse_questions(text, "zh_Hans")
    assert refused.value.code == code and refused.value.context.get("line") == line


def survey() -> Survey:
    start = datetime(2026, 12, 7, tzinfo=UTC)
    questions = parse_questions("打分 环境\n打分 绿化\n多选? 参加过 | 志愿 | 答题", "zh_Hans")
    return Survey(1, 1, {"zh_Hans": "测评"}, questions, start, start + timedelta(days=14))


def test_answers_out_of_range_or_of_the_wrong_kind_are_refused() -> None:
    scale, multi = survey().questions[0], survey().questions[2]
    for value in (0, 6, True, "5", None):
        with pytest.raises(SurveyError):
            scale.check(value)
    with pytest.raises(SurveyError):
        multi.check([0, 5])
    with pytest.raises(SurveyError):
        multi.check([True])
    assert multi.check([1, 0, 1]) == [0, 1]
    text = Question("t", QuestionKind.TEXT, {"en": "Anything?"}, limit=7)
    with pytest.raises(SurveyError) as refused:
        text.check("far too long")
    assert refused.value.code == "text_too_long" and text.check("  ok  fine ") == "ok fine"


def test_progress_asks_the_first_unanswered_question_and_submits_only_when_required_ones_are_answered() -> None:
    s = survey()
    progress = Progress().answer(s.questions[0], 5)
    assert progress.next_question(s) == s.questions[1]
    with pytest.raises(SurveyError):
        progress.final(s)
    progress = progress.answer(s.questions[1], 4).skip(s.questions[2])
    assert progress.next_question(s) is None and progress.final(s) == {"q1": 5, "q2": 4}
    with pytest.raises(SurveyError):
        progress.skip(s.questions[0])


def test_index_maps_ratings_to_0_100_and_satisfied_counts_4_and_5() -> None:
    s = replace(survey(), anonymous=False)
    responses = [Response({"q1": v, "q2": v}, date(2026, 12, 8), "1号楼") for v in (1, 2, 3, 4, 5)]
    results = tally(s, responses)
    assert results.index == 50.0 and results.satisfied_share == 40.0
    assert [(g.name, g.shown, g.index) for g in results.buildings] == [("1号楼", True, 50.0)]
    assert tally(s, responses[:4]).buildings[0].shown is False and tally(s, responses[:4]).hidden_groups == 1
    assert tally(s, []).index is None


def test_anonymous_results_of_fewer_than_five_show_only_their_number() -> None:
    s = survey()  # anonymous
    responses = [Response({"q1": v, "q2": v}, date(2026, 12, 8), "1号楼") for v in (1, 2, 3, 4, 5)]
    few = tally(s, responses[:4])
    assert few.withheld and few.respondents == 4 and few.index is None and few.questions == () == few.buildings
    enough = tally(s, responses)
    assert not enough.withheld and enough.index == 50.0 and len(enough.questions) == 3
    assert not tally(replace(s, anonymous=False), responses[:1]).withheld  # a named survey: organisers know who


def test_a_survey_closing_before_it_opens_cannot_exist() -> None:
    start = datetime(2026, 12, 7, tzinfo=UTC)
    with pytest.raises(SurveyError) as refused:
        Survey(1, 1, {"zh_Hans": "测评"}, survey().questions, start, start - timedelta(hours=1))
    assert refused.value.code == "closes_before_opens"


def test_survey_library_needs_every_text_in_each_language(tmp_path: Path) -> None:
    from content.surveys import check_library, load_library

    assert set(load_library()) == {"twice_yearly"}
    (tmp_path / "surveys").mkdir()
    (tmp_path / "surveys" / "broken.yaml").write_text(
        "title: {zh_Hans: 测评, en: Survey}\nquestions:\n  - {key: env, kind: scale, text: {zh_Hans: 满意吗？}}\n",
        encoding="utf-8",
    )
    assert check_library(tmp_path) == ["surveys/broken: question 1: needs a text in each of zh_Hans, en"]


def test_none_of_these_clears_the_other_choices_and_is_cleared_by_them() -> None:
    options = tuple({"en": name} for name in ("Volunteering", "The quiz", "None of these"))
    joined = Question("joined", QuestionKind.MULTI, {"en": "Which?"}, options, exclusive=2)
    progress = Progress().toggle(joined, 0).toggle(joined, 1)
    assert progress.picking["joined"] == [0, 1]
    progress = progress.toggle(joined, 2)
    assert progress.picking["joined"] == [2]
    assert progress.toggle(joined, 1).picking["joined"] == [1]
    with pytest.raises(SurveyError):
        joined.check([0, 2])  # a forged "both" is refused
    assert Question.from_json(joined.to_json()) == joined
    with pytest.raises(SurveyError):
        Question("q", QuestionKind.MULTI, {"en": "Which?"}, options, exclusive=3)
