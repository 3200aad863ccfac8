"""Report categories and workflow timing (``reports/categories.yaml``), validated."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from bot.domain.reports import Category, Policy
from bot.domain.roles import STAFF, Role
from content.tracks import TRACK_KEYS

CATEGORIES = Path(__file__).parent / "reports" / "categories.yaml"
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=48)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Names(_Frozen):
    zh_Hans: Name
    en: Name


class CategoryModel(_Frozen):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,15}$")
    track: str | None
    hours: int = Field(ge=1, le=24 * 30)
    role: Role
    photo_optional: bool = False
    name: Names

    @model_validator(mode="after")
    def _known(self) -> CategoryModel:
        if self.track is not None and self.track not in TRACK_KEYS:
            raise ValueError(f"{self.key}: unknown track {self.track!r}")
        if self.role not in STAFF:
            raise ValueError(f"{self.key}: reports are handled by grid workers or organisers, not {self.role}")
        return self

    def to_domain(self) -> Category:
        names = (("zh_Hans", self.name.zh_Hans), ("en", self.name.en))
        return Category(self.key, self.track, self.hours, self.role, names, self.photo_optional)


class CategoriesFile(_Frozen):
    grace_hours: int = Field(24, ge=1, le=24 * 14)
    check_days: int = Field(3, ge=1, le=60)
    nearby_metres: float = Field(250, gt=0, le=5000)
    categories: list[CategoryModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> CategoriesFile:
        keys = [c.key for c in self.categories]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate category keys in {keys}")
        return self


def load_report_policy(path: Path = CATEGORIES) -> Policy:
    """Validate the file and build the workflow policy."""
    data = CategoriesFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    return Policy(tuple(c.to_domain() for c in data.categories), data.grace_hours, data.check_days, data.nearby_metres)
