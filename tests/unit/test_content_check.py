"""`sicheng content check` catches what would break in front of a resident: missing or broken templates, a question
bank a guesser can pass, wording the glossary rules out."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

import content
from bot.cli import app
from bot.config import Settings
from bot.content_check import check_all

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
UNFAIR = FIXTURES / "unfair_bank"


def _copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(content.TEMPLATES, target)
    return target


def test_content_check_on_shipped_content_passes() -> None:
    assert check_all(Settings()) == []


def test_content_check_template_missing_in_a_locale_fails(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "en" / "menu" / "help.j2").unlink()
    errors = check_all(Settings(content_dir=templates))
    assert "template 'menu/help' missing in en" in errors


def test_content_check_label_missing_in_a_locale_fails(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    labels = templates / "zh_Hans" / "labels" / "common.yaml"
    labels.write_text(labels.read_text(encoding="utf-8").replace('  learn: "📚 学习答题"\n', ""), encoding="utf-8")
    errors = check_all(Settings(content_dir=templates))
    assert "label 'menu.learn' missing in zh_Hans" in errors


def test_content_check_broken_template_syntax_fails(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "en" / "menu" / "help.j2").write_text("{% if staff %}unclosed", encoding="utf-8")
    errors = check_all(Settings(content_dir=templates))
    assert any(e.startswith("en/menu/help.j2") for e in errors)


def _fairness_errors(root: Path) -> list[str]:
    return [e for e in check_all(Settings(), root) if e.startswith("questions/civilised.yaml (")]


def _glossary_errors(root: Path) -> list[str]:
    return [e for e in check_all(Settings(content_dir=root / "templates"), root) if "glossary says" in e]


def test_content_check_answer_always_longest_fails_naming_track_and_goal() -> None:
    errors = _fairness_errors(UNFAIR / "longest")
    assert "questions/civilised.yaml (zh_Hans): picking the longest option scores 100% (goal ≤ 35%)" in errors
    assert "questions/civilised.yaml (en): the answer is the strictly longest option in 100% (goal ≤ 35%)" in errors


def test_content_check_answer_always_option_one_fails_on_positions() -> None:
    errors = _fairness_errors(UNFAIR / "first_option")
    assert "questions/civilised.yaml (zh_Hans): option 1 is the answer in 100% (goal 15%–35%)" in errors
    assert "questions/civilised.yaml (en): option 4 is the answer in 0% (goal 15%–35%)" in errors


def test_content_check_hint_words_only_in_answers_fails() -> None:
    errors = _fairness_errors(UNFAIR / "hint_words")
    assert any(e.startswith("questions/civilised.yaml (zh_Hans): only the answer has a hint word") for e in errors)
    assert any(e.startswith("questions/civilised.yaml (en): only the answer has a hint word") for e in errors)


def test_content_check_multi_select_all_but_one_correct_fails_naming_questions() -> None:
    errors = _fairness_errors(UNFAIR / "all_but_one")
    assert (
        "questions/civilised.yaml (zh_Hans): 2 of 2 multi-select questions have every option but one correct "
        "(civ-009, civ-010; goal: at most 50%)"
    ) in errors


def test_content_check_fair_bank_has_no_fairness_problem() -> None:
    assert _fairness_errors(FIXTURES / "fair_bank") == []


def test_content_check_cli_unfair_root_exits_non_zero() -> None:
    result = CliRunner().invoke(app, ["content", "check", "--root", str(UNFAIR / "longest")])
    assert result.exit_code == 1
    assert "questions/civilised.yaml (en): picking the longest option scores 100%" in result.output


def test_content_check_glossary_violation_in_template_fails_naming_file_and_term() -> None:
    errors = _glossary_errors(FIXTURES / "glossary_violation")
    assert "templates/zh_Hans/points/earned.j2:1: wrote 'N 个文明积分', glossary says '文明积分 N 分'" in errors
    assert "templates/en/points/earned.j2:1: wrote 'civic points', glossary says 'civility points'" in errors
    assert "templates/zh_Hans/labels/reports.yaml:2: wrote '处理人', glossary says '责任人'" in errors
    assert "tracks.yaml:12: wrote 'Hygienic City', glossary says 'National Sanitary City'" in errors


def test_content_check_glossary_exceptions_are_not_flagged() -> None:
    errors = _glossary_errors(FIXTURES / "glossary_violation")
    # 负责人 for the report's handler is wrong; 社区负责人 (the community's head) and an issuer's 负责人 are not
    assert [e for e in errors if "负责人" in e] == [
        "templates/zh_Hans/reports/detail.j2:2: wrote '负责人', glossary says '责任人'"
    ]


def test_content_check_other_locales_variant_is_not_flagged() -> None:
    # the zh texts quote "civic points" and "Hygienic City", the en texts "个积分" and "未予受理"
    assert _glossary_errors(FIXTURES / "glossary_other_locale") == []
