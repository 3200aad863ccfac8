"""Points content, validated: earning rules (``points/rules.yaml``) and rewards catalogues (``rewards/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import yaml
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bot.domain.points import EARNED, Policy, Reason, Rule
from bot.domain.rewards import Reward

RULES = Path(__file__).parent / "points" / "rules.yaml"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=48)]
About = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleModel(_Frozen):
    points: int = Field(ge=0, le=1000)
    daily_cap: int | None = Field(None, ge=0)
    weekly_cap: int | None = Field(None, ge=0)


class RulesFile(_Frozen):
    expiry_months: int | None = Field(None, ge=1, le=120)
    reminder_days: int = Field(30, ge=1, le=365)
    redemption_valid_days: int = Field(14, ge=1, le=365)
    rules: dict[Reason, RuleModel]

    @model_validator(mode="after")
    def _only_earning_reasons(self) -> RulesFile:
        wrong = sorted(r.value for r in self.rules if r not in EARNED)
        if wrong:
            raise ValueError(f"rules are for earning reasons only, not {wrong}")
        return self


class Localised(_Frozen):
    zh_Hans: Name
    en: Name


class LocalisedAbout(_Frozen):
    zh_Hans: About = ""
    en: About = ""


class RewardModel(_Frozen):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: Localised
    description: LocalisedAbout = LocalisedAbout()
    cost: int = Field(ge=1, le=1_000_000)
    stock: int | None = Field(None, ge=0)
    per_person_limit: int | None = Field(None, ge=1)
    active: bool = True
    active_from: AwareDatetime | None = None
    active_until: AwareDatetime | None = None
    service_point: str | None = Field(None, max_length=128)

    @model_validator(mode="after")
    def _window(self) -> RewardModel:
        if self.active_from and self.active_until and self.active_from >= self.active_until:
            raise ValueError("active_from must be before active_until")
        return self

    def to_domain(self, community_id: int = 0) -> Reward:
        """A Reward not yet stored (id 0)."""
        data: dict[str, Any] = self.model_dump()
        data["name"], data["description"] = self.name.model_dump(), self.description.model_dump()
        return Reward(id=0, community_id=community_id, **data)


class CatalogueFile(_Frozen):
    community: str | None = None
    rewards: list[RewardModel]

    @model_validator(mode="after")
    def _unique_slugs(self) -> CatalogueFile:
        slugs = [r.slug for r in self.rewards]
        if len(slugs) != len(set(slugs)):
            raise ValueError("reward slugs must be unique in a catalogue")
        return self


@dataclass(frozen=True)
class Catalogue:
    community: str | None
    rewards: list[Reward]


def load_policy(path: Path = RULES, timezone: str = "Asia/Shanghai") -> Policy:
    """Read and validate the earning rules (raises pydantic.ValidationError with every problem)."""
    data = RulesFile.model_validate(_yaml(path))
    rules = {reason: Rule(r.points, r.daily_cap, r.weekly_cap) for reason, r in data.rules.items()}
    return Policy(rules, ZoneInfo(timezone), data.expiry_months, data.reminder_days, data.redemption_valid_days)


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a rewards catalogue file."""
    data = CatalogueFile.model_validate(_yaml(path))
    return Catalogue(data.community, [r.to_domain() for r in data.rewards])


def _yaml(path: Path) -> Any:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def check_points(root: Path) -> list[str]:
    """Problems in ``points/rules.yaml`` and ``rewards/*.yaml`` under a content root (for ``content check``)."""
    errors: list[str] = []
    for path, load in [(root / "points" / "rules.yaml", load_policy)] + [
        (p, load_catalogue) for p in sorted((root / "rewards").glob("*.yaml"))
    ]:
        try:
            load(path)
        except Exception as error:
            errors.append(f"{path.relative_to(root)}: {error}")
    return errors
