"""``sicheng content check``: every content file valid, every template and label present in every locale."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import content
from bot.config import Settings
from bot.rendering import Renderer

Check = Callable[[Path], list[str]]


def check_templates(renderer: Renderer) -> list[str]:
    """Same templates and labels in each locale; each template parses; each label compiles."""
    errors: list[str] = []
    locales = renderer.locales
    all_templates = set().union(*(renderer.template_names(loc) for loc in locales))
    all_labels = set().union(*(renderer.label_keys(loc) for loc in locales))
    for loc in locales:
        errors += [
            f"template {name!r} missing in {loc}" for name in sorted(all_templates - renderer.template_names(loc))
        ]
        errors += [f"label {key!r} missing in {loc}" for key in sorted(all_labels - renderer.label_keys(loc))]
        errors += renderer.syntax_errors(loc)
    return errors


def check_commands(renderer: Renderer) -> list[str]:
    """Every command in Telegram's command menu needs a ``commands.<name>`` label in every locale."""
    from handlers import build_router

    names = build_router().menu_commands
    return [
        f"label 'commands.{name}' missing in {loc} (command menu)"
        for loc in renderer.locales
        for name in names
        if not renderer.has_label(loc, f"commands.{name}")
    ]


def check_tracks(root: Path) -> list[str]:
    from content.tracks import load_tracks

    try:
        load_tracks(root / "tracks.yaml")
    except Exception as error:
        return [f"tracks.yaml: {error}"]
    return []


def check_quiz_bank(root: Path) -> list[str]:
    from content.quiz_bank import check_bank

    return check_bank(root)


def check_demo(root: Path) -> list[str]:
    from bot.seed import load_communities

    try:
        load_communities(root / "demo" / "community.yaml")
    except Exception as error:
        return [f"demo/community.yaml: {error}"]
    return []


def check_report_categories(root: Path) -> list[str]:
    from content.report_categories import load_report_policy

    try:
        load_report_policy(root / "reports" / "categories.yaml")
    except Exception as error:
        return [f"reports/categories.yaml: {error}"]
    return []


def check_points(root: Path) -> list[str]:
    from content.points import check_points as check

    return check(root)


# Each feature adds its content check here.
CHECKS: tuple[Check, ...] = (check_tracks, check_quiz_bank, check_demo, check_report_categories, check_points)


def check_all(settings: Settings, root: Path = content.ROOT) -> list[str]:
    """All problems found, as readable lines (empty: content is fine)."""
    errors: list[str] = []
    try:
        renderer = Renderer(settings.content_dir or content.TEMPLATES)
        errors += check_templates(renderer)
        errors += check_commands(renderer)
    except Exception as error:  # a broken labels file stops the renderer itself
        errors.append(f"templates: {error}")
    for check in CHECKS:
        errors += check(root)
    return errors
