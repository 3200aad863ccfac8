"""Every word on a dashboard page is a label that exists in both languages (a page using a label nobody wrote fails
here, before a person meets a ``KeyError`` page)."""

from __future__ import annotations

import re

import content
from bot.rendering import Renderer

PAGES = content.ROOT / "dashboard"
LITERAL = re.compile(r"""\bt\(\s*["']([\w.]+)["']\s*[,)]""")  # a whole key (not "area." ~ name)


def test_every_label_a_dashboard_page_names_exists_in_both_languages() -> None:
    renderer = Renderer(content.TEMPLATES)
    missing = []
    for page in sorted(PAGES.glob("*.html.j2")):
        for key in LITERAL.findall(page.read_text(encoding="utf-8")):
            area, _, rest = key.partition(".")
            names = [f"dashboard.{key}"] + ([f"dashboard_{area}.{rest}"] if rest else [])
            for locale in ("zh_Hans", "en"):
                if not any(renderer.has_label(locale, name) for name in names):
                    missing.append(f"{page.name}: {key} ({locale})")
    assert missing == []
