"""Content: tracks, question banks, categories, rewards (YAML) and templates per locale (jinja2)."""

from pathlib import Path

ROOT = Path(__file__).parent
TEMPLATES = ROOT / "templates"
