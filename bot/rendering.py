"""Renders templates and button labels in a locale, with one jinja2 Environment per locale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateSyntaxError, select_autoescape

from bot.domain.residents import DEFAULT_LOCALE, LOCALES

LABELS_DIR = "labels"
COMMON_LABELS = "common"


class Renderer:
    """Message templates are ``<locale>/<name>.j2`` (HTML, autoescaped); labels are ``<locale>/labels/*.yaml``.

    Labels in ``labels/<area>.yaml`` are keyed ``<area>.<key>`` (``common.yaml`` has no prefix), so each feature
    keeps its own file.

    StrictUndefined makes a missing variable an error in tests instead of an empty gap in front of a resident.
    """

    def __init__(self, root: Path, locales: tuple[str, ...] = LOCALES) -> None:
        self.root = root
        self.locales = locales
        self._envs = {loc: self._environment(root / loc) for loc in locales}
        self._labels = {loc: self._load_labels(root / loc / LABELS_DIR) for loc in locales}
        self._label_templates: dict[tuple[str, str], Any] = {}  # compiled, or the text itself when it is plain
        self._plain = Environment(undefined=StrictUndefined, autoescape=False)

    def render(self, locale: str, template: str, context: dict[str, Any] | None = None) -> str:
        """Render ``template`` (e.g. ``onboarding/welcome``) in ``locale``; trailing whitespace trimmed."""
        env = self._envs.get(locale) or self._envs[DEFAULT_LOCALE]
        return env.get_template(f"{template}.j2").render(context or {}).strip()

    def label(self, locale: str, key: str, context: dict[str, Any] | None = None) -> str:
        """A short plain-text label (buttons, command descriptions); labels may use ``{{ }}`` too."""
        locale = locale if locale in self._labels else DEFAULT_LOCALE
        cache_key = (locale, key)
        compiled = self._label_templates.get(cache_key)
        if compiled is None:
            source = self._labels[locale].get(key)
            if source is None:
                raise KeyError(f"label {key!r} missing in {locale}")
            # Most labels are plain text: kept as they are, not rendered by jinja2 for every button of every reply.
            compiled = self._plain.from_string(source) if "{" in source else source.strip()
            self._label_templates[cache_key] = compiled
        if isinstance(compiled, str):
            return compiled
        return str(compiled.render(context or {})).strip()

    def has_label(self, locale: str, key: str) -> bool:
        return key in self._labels.get(locale, {})

    def template_names(self, locale: str) -> set[str]:
        """All message templates of a locale, without the ``.j2`` suffix."""
        base = self.root / locale
        return {str(p.relative_to(base).with_suffix("")) for p in base.rglob("*.j2")}

    def label_keys(self, locale: str) -> set[str]:
        return set(self._labels.get(locale, {}))

    def syntax_errors(self, locale: str) -> list[str]:
        """Templates and labels of a locale that jinja2 cannot parse."""
        errors = []
        for name in sorted(self.template_names(locale)):
            source = (self.root / locale / f"{name}.j2").read_text(encoding="utf-8")
            try:
                self._envs[locale].parse(source)
            except TemplateSyntaxError as error:
                errors.append(f"{locale}/{name}.j2 line {error.lineno}: {error.message}")
        for key, source in sorted(self._labels.get(locale, {}).items()):
            try:
                self._plain.parse(source)
            except TemplateSyntaxError as error:
                errors.append(f"label {key!r} in {locale}: {error.message}")
        return errors

    @staticmethod
    def _environment(path: Path) -> Environment:
        # Templates are read once per process (as labels are): without auto_reload jinja2 would look at each file's
        # modification time on every render. The cache holds every template of a locale.
        return Environment(
            loader=FileSystemLoader(path),
            auto_reload=False,
            cache_size=2000,
            undefined=StrictUndefined,
            autoescape=select_autoescape(enabled_extensions=("j2",), default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    @staticmethod
    def _load_labels(folder: Path) -> dict[str, str]:
        labels: dict[str, str] = {}
        for path in sorted(folder.glob("*.yaml")):
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            labels.update(_flatten(data, "" if path.stem == COMMON_LABELS else f"{path.stem}."))
        return labels


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
