"""Wording a resident reads: no doubled words, no demo-only rewards, no joined English sentences."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

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


@pytest.mark.parametrize("community", ["东湖社区", "阳光花园", None])
def test_group_welcome_reads_well_whatever_the_community_is_called(community: str | None) -> None:
    text = RENDERER.render("zh_Hans", "group/welcome", {"names": "小王", "community": community})
    assert "社区社区" not in text
    assert f"加入「{community}」居民群" in text if community else "加入社区居民群" in text


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_points_expiring_lists_the_rewards_it_was_given(locale: str) -> None:
    rewards = [{"name": "洗车券", "cost": 12}, {"name": "Tea set", "cost": 40}]
    text = RENDERER.render(locale, "points/expiring", {"points": 20, "expires": "2026-12-31", "rewards": rewards})
    assert "洗车券" in text and "Tea set" in text and "12" in text and "40" in text
    assert not any(word in text.lower() for word in ("理发", "小家电", "haircut", "appliance"))


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_points_expiring_without_rewards_points_to_points_screen(locale: str) -> None:
    text = RENDERER.render(locale, "points/expiring", {"points": 20, "expires": "2026-12-31", "rewards": []})
    assert "/points" in text and "例如" not in text and "for example" not in text
    assert not any(word in text.lower() for word in ("理发", "小家电", "haircut", "appliance"))


@pytest.mark.parametrize(("locale", "amount"), [("zh_Hans", "文明积分 <b>20</b> 分"), ("en", "civility points")])
def test_points_expiring_names_points_as_the_glossary_does(locale: str, amount: str) -> None:
    text = RENDERER.render(locale, "points/expiring", {"points": 20, "expires": "2026-12-31", "rewards": []})
    assert amount in text and "个文明积分" not in text


@pytest.mark.parametrize(("locale", "label"), [("zh_Hans", "其他"), ("en", "Other")])
def test_choose_category_other_is_said_once(locale: str, label: str) -> None:
    groups = [{"track": "civilised", "names": ["乱扔垃圾"]}, {"track": None, "names": [label]}]
    text = RENDERER.render(locale, "reports/choose_category", {"groups": groups, "photo_first": False})
    assert text.count(label) == 1 and f"📌 {label}" in text


@pytest.mark.parametrize(
    ("locale", "none_yet"), [("zh_Hans", "提交→整改完成：暂无"), ("en", "Submitted → fixed: none yet")]
)
def test_stats_without_resolved_reports_says_none_yet(locale: str, none_yet: str) -> None:
    text = RENDERER.render(locale, "reports/stats", STATS)
    assert none_yet in text and "0.0" not in text and "中位 —" not in text and "median —" not in text


@pytest.mark.parametrize(
    ("locale", "none_yet"),
    [("zh_Hans", "按期完成率：暂无；返工率：暂无"), ("en", "On time: none yet; reopened: none yet")],
)
def test_stats_without_handled_reports_gives_no_share(locale: str, none_yet: str) -> None:
    text = RENDERER.render(locale, "reports/stats", STATS)
    assert none_yet in text and "—" not in text


def test_stats_with_resolved_reports_gives_hours() -> None:
    figures = Figures(
        total=2, by_type={"open": 0, "fixed": 1, "closed": 1}, resolve_median_h=20.0, resolve_p90_h=30.5,
        on_time_share=0.5, reopened_share=0.0,
    )  # fmt: skip
    text = RENDERER.render("zh_Hans", "reports/stats", STATS | {"f": figures})
    assert "中位 20.0 小时，90% 在 30.5 小时 内" in text and "按期完成率：50%；返工率：0%" in text
    assert "提交→确认销号：暂无" in text


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


ACCEPTED = {"role": "reporter", "ticket": "SC-7", "category": "食品安全隐患", "assignee": "刘书记", "points": 0}


@pytest.mark.parametrize(("locale", "word"), [("zh_Hans", "责任人"), ("en", "person responsible")])
def test_accepted_notice_names_person_responsible_not_grid_worker(locale: str, word: str) -> None:
    """A food report is taken by an organiser: the resident must not read that a grid worker has it."""
    deadline = datetime(2026, 5, 1, 10, 0)
    text = RENDERER.render(locale, "reports/notify/accepted", ACCEPTED | {"deadline": deadline})
    assert word in text and "网格员" not in text and "grid worker" not in text


@pytest.mark.parametrize(("locale", "word"), [("zh_Hans", "责任人"), ("en", "person responsible")])
def test_choose_category_promises_person_responsible_not_grid_workers(locale: str, word: str) -> None:
    groups = [{"track": "food_safety", "names": ["食品安全隐患"]}]
    text = RENDERER.render(locale, "reports/choose_category", {"groups": groups, "photo_first": False})
    assert word in text and "网格员" not in text and "Grid worker" not in text


@pytest.mark.parametrize("photo_first", [False, True])
@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_choose_category_puts_each_track_on_its_own_line(locale: str, photo_first: bool) -> None:
    names = ("Q1x", "Q2x", "Q3x")
    groups: list[dict[str, Any]] = [
        {"track": "civilised", "names": [names[0]]},
        {"track": "sanitary", "names": [names[1]]},
    ]
    groups.append({"track": None, "names": [names[2]]})
    text = RENDERER.render(locale, "reports/choose_category", {"groups": groups, "photo_first": photo_first})
    lines = [line for line in text.splitlines() if any(name in line for name in names)]
    assert len(lines) == 3 and all(line.endswith(name) for line, name in zip(lines, names, strict=True))


@pytest.mark.parametrize(("locale", "rejected"), [("zh_Hans", "不予受理"), ("en", "not accepted")])
def test_rejected_report_detail_says_not_accepted(locale: str, rejected: str) -> None:
    context = {
        "ticket": "SC-7", "category": "其他", "status": "rejected", "reject_reason": "invalid", "building": None,
        "address": "3号楼", "latitude": None, "longitude": None, "description": "—", "assignee": None,
        "deadline": None, "type": "closed", "note": None, "reporter_public": None, "history": [],
    }  # fmt: skip
    text = RENDERER.render(locale, "reports/detail", context)
    assert rejected in text and "未受理" not in text and "rejected" not in text


# Words the glossary replaced (in the source, so that words inside expressions count too; variable names such as
# ``assignee`` are lower case and never follow "the"): 责任人, 不予受理, 文明积分 N 分, civility points, Telegram ID.
_RETIRED = {
    "zh_Hans": re.compile(r"处理人|负责人：|未受理|未予受理|个文明积分|个积分|Telegram ?(?:号|编号)"),
    "en": re.compile(r"[Cc]ivic points?|Hygienic|Telegram id\b|Assignee|the assignee"),
}


def test_retired_words_scan_finds_them() -> None:
    assert _RETIRED["zh_Hans"].findall("处理人：王 · 5 个文明积分") == ["处理人", "个文明积分"]
    assert _RETIRED["en"].findall("3 civic points; Assignee: {{ assignee }}, Telegram id 5") == [
        "civic points", "Assignee", "Telegram id",
    ]  # fmt: skip


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_templates_and_labels_use_no_retired_words(locale: str) -> None:
    root = content.TEMPLATES / locale
    found = [
        f"{path.relative_to(root)}: {hit}"
        for path in sorted([*root.rglob("*.j2"), *root.rglob("*.yaml")])
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
        for hit in _RETIRED[locale].findall(line)
    ]
    assert found == []


@pytest.mark.parametrize("locale", ["zh_Hans", "en"])
def test_proposal_card_puts_each_milestone_and_payment_on_its_own_line(locale: str) -> None:
    from datetime import UTC

    day = datetime(2026, 12, 7, tzinfo=UTC)
    card = {
        "outcome": "", "title": "口袋公园", "track": "garden", "cost": 800_000, "status": "accepted",
        "description": "清理空地，放长椅", "votes": {"for": 2, "against": 1, "abstain": 0, "total": 3},
        "reason": None, "budget": 800_000, "spent": 420_000, "over_budget": False,
        "milestones": [{"at": day, "note": "清理杂物", "photo": "a.jpg"},
                       {"at": day, "note": "平整场地", "photo": None}],
        "expenses": [{"at": day, "amount": 320_000, "purpose": "长椅"},
                     {"at": day, "amount": 100_000, "purpose": "花草"}],
    }  # fmt: skip
    lines = RENDERER.render(locale, "proposals/card", card).splitlines()
    for text in ("清理杂物 📷", "平整场地", "长椅", "花草"):
        assert sum(1 for line in lines if line.startswith("· ") and line.endswith(text)) == 1, (text, lines)
