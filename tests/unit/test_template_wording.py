"""Wording a resident reads: no doubled words, no demo-only rewards, no joined English sentences."""

from __future__ import annotations

import re

import pytest
import yaml
from jinja2 import Environment

import content
from bot.domain.report_figures import Figures
from bot.rendering import Renderer

RENDERER = Renderer(content.TEMPLATES)
EN = content.TEMPLATES / "en"
FIGURES = Figures(total=0, by_type=dict.fromkeys(("open", "fixed", "closed"), 0))
STATS = {"community": "示范社区", "days": 30, "names": {}, "f": FIGURES}


def test_too_long_in_chinese_uses_full_width_comma() -> None:
    text = RENDERER.render("zh_Hans", "errors/too_long", {"limit": 4096})
    assert "," not in text and "（最多 4096 字），请精简" in text


def test_group_welcome_names_community_once() -> None:
    zh = RENDERER.render("zh_Hans", "group/welcome", {"names": "小王", "community": "东湖社区"})
    en = RENDERER.render("en", "group/welcome", {"names": "Wang", "community": "East Lake Community"})
    assert "社区社区" not in zh and "加入「东湖社区」居民群" in zh
    assert "Community community" not in en and "residents' group of East Lake Community" in en


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_points_expiring_names_no_demo_reward(locale: str) -> None:
    text = RENDERER.render(locale, "points/expiring", {"points": 20, "expires": "2026-12-31"})
    assert not any(word in text for word in ("理发", "小家电", "haircut", "appliance"))
    assert "/points" in text


@pytest.mark.parametrize(("locale", "label"), [("zh_Hans", "其他"), ("en", "Other")])
def test_choose_category_other_is_said_once(locale: str, label: str) -> None:
    groups = [{"track": "civilised", "names": ["乱扔垃圾"]}, {"track": None, "names": [label]}]
    text = RENDERER.render(locale, "reports/choose_category", {"groups": groups})
    assert text.count(label) == 1 and f"📌 {label}" in text


@pytest.mark.parametrize(
    ("locale", "none_yet"), [("zh_Hans", "提交→整改完成：暂无"), ("en", "Submitted → fixed: none yet")]
)
def test_stats_without_resolved_reports_says_none_yet(locale: str, none_yet: str) -> None:
    text = RENDERER.render(locale, "reports/stats", STATS)
    assert none_yet in text and "0.0" not in text and "中位 —" not in text and "median —" not in text


@pytest.mark.parametrize("had_dialog", [True, False])
def test_cancelled_sentences_are_on_separate_lines(had_dialog: bool) -> None:
    text = RENDERER.render("en", "menu/cancelled", {"had_dialog": had_dialog})
    assert ".\nSend /menu" in text


# What a period may touch: an abbreviation (e.g., U.S.), a web address or a file name.
_ALLOWED = re.compile(r"://|www\.|\b[A-Za-z]\.[A-Za-z]\.|\.(?:PDF|CSV|XLSX|PNG|JPE?G)\b")
_JOINED = re.compile(r"\S*[a-z)\"”’]\.[A-Z]\S*")


def _as_rendered(env: Environment, source: str) -> str:
    """The template's text as the renderer joins it: whitespace control applied, each expression a placeholder,
    and an ``else``/``elif`` branch on a line of its own (it never follows the branch above it)."""
    tokens = [(kind, value) for _, kind, value in env.lex(source) if kind != "whitespace"]
    parts = []
    for i, (kind, value) in enumerate(tokens):
        if kind == "data":
            parts.append(value)
        elif kind == "variable_begin":
            parts.append("x")
        elif kind == "block_begin" and i + 1 < len(tokens) and tokens[i + 1][1] in ("else", "elif"):
            parts.append("\n")
    return "".join(parts)


def _english_texts() -> list[tuple[str, str]]:
    templates = Environment(trim_blocks=True, lstrip_blocks=True)
    labels = Environment()
    texts = [(str(p.relative_to(EN)), _as_rendered(templates, p.read_text(encoding="utf-8"))) for p in EN.rglob("*.j2")]
    for path in (EN / "labels").glob("*.yaml"):
        for value in _leaves(yaml.safe_load(path.read_text(encoding="utf-8")) or {}):
            texts.append((path.name, _as_rendered(labels, value)))
    return texts


def _leaves(data: object) -> list[str]:
    if isinstance(data, dict):
        return [leaf for value in data.values() for leaf in _leaves(value)]
    return [str(data)]


def test_english_texts_scan_finds_joined_sentences() -> None:
    env = Environment(trim_blocks=True, lstrip_blocks=True)
    joined = "{% if a %}Cancelled.{% else %}Nothing to cancel.{% endif %}\nSend /menu."
    assert _JOINED.findall(_as_rendered(env, joined)) == ["cancel.Send"]


def test_english_texts_have_no_sentences_joined_without_space() -> None:
    found = [
        f"{name}: {hit}" for name, text in _english_texts() for hit in _JOINED.findall(text) if not _ALLOWED.search(hit)
    ]
    assert found == []


def test_english_texts_scan_covers_templates_and_labels() -> None:
    names = {name for name, _ in _english_texts()}
    assert "menu/cancelled.j2" in names and "common.yaml" in names
