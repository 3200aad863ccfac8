"""``sicheng content check``: every content file valid, every template and label present in every locale, a question
bank a guesser cannot pass, and the glossary's wording everywhere."""

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


def check_fairness(root: Path) -> list[str]:
    """Each quiz-fairness goal a track misses, per language (see content.quiz_fairness); a bank that does not load is
    reported by check_quiz_bank."""
    from content.quiz_bank import BankError, load_bank
    from content.quiz_fairness import bank_fairness

    try:
        bank = load_bank(root)
    except BankError:
        return []
    rows = bank_fairness({track: bank.questions(track) for track in bank.tracks})
    return [f"questions/{row.track}.yaml ({row.locale}): {problem}" for row in rows for problem in row.problems()]


def check_glossary(root: Path, templates: Path) -> list[str]:
    """Each wrong variant of a glossary term (content/glossary.yaml) in the content and templates, by file and line."""
    from content.glossary import find_violations, load_glossary

    try:
        glossary = load_glossary()
    except Exception as error:
        return [f"glossary.yaml: {error}"]
    return [str(violation) for violation in find_violations(glossary, root, templates)]


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


def check_proposals(root: Path) -> list[str]:
    from content.proposal_rules import check_rules

    return check_rules(root)


def check_surveys(root: Path) -> list[str]:
    from content.surveys import check_library

    return check_library(root)


# Each feature adds its content check here.
CHECKS: tuple[Check, ...] = (
    check_tracks,
    check_quiz_bank,
    check_fairness,
    check_demo,
    check_report_categories,
    check_points,
    check_proposals,
    check_surveys,
)


def check_all(settings: Settings, root: Path = content.ROOT) -> list[str]:
    """All problems found, as readable lines (empty: content is fine)."""
    errors: list[str] = []
    templates = settings.content_dir or content.TEMPLATES
    try:
        renderer = Renderer(templates)
        errors += check_templates(renderer)
        errors += check_commands(renderer)
    except Exception as error:  # a broken labels file stops the renderer itself
        errors.append(f"templates: {error}")
    for check in CHECKS:
        errors += check(root)
    errors += check_glossary(root, templates)
    return errors
