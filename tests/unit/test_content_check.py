"""`sicheng content check` catches what would break in front of a resident."""

from __future__ import annotations

import shutil
from pathlib import Path

import content
from bot.config import Settings
from bot.content_check import check_all


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
