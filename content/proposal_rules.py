"""Proposal defaults (``proposals/rules.yaml``), validated: the support threshold and the two periods."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.domain.proposals import COLLECT_DAYS_MAX, THRESHOLD_MAX, THRESHOLD_MIN, VOTE_DAYS_MAX, Rules

RULES = Path(__file__).parent / "proposals" / "rules.yaml"


class RulesFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    threshold: int = Field(ge=THRESHOLD_MIN, le=THRESHOLD_MAX)
    collect_days: int = Field(ge=1, le=COLLECT_DAYS_MAX)
    vote_days: int = Field(ge=1, le=VOTE_DAYS_MAX)


def load_rules(path: Path = RULES) -> Rules:
    """The default rules every community has until its organisers change them."""
    data = RulesFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    return Rules(data.threshold, data.collect_days, data.vote_days)


def check_rules(root: Path) -> list[str]:
    try:
        load_rules(root / "proposals" / "rules.yaml")
    except Exception as error:
        return [f"proposals/rules.yaml: {error}"]
    return []
