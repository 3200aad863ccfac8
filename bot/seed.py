"""Importing communities (and, later, other demo data) from YAML files."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from bot.services.container import Services


class BuildingSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str


class CommunitySpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: str
    name: str
    buildings: list[BuildingSpec] = []


class CommunityFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    communities: list[CommunitySpec]


def load_communities(path: Path) -> CommunityFile:
    """Parse and validate a communities file."""
    return CommunityFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


async def import_communities(services: Services, path: Path) -> list[str]:
    """Create what is missing: existing communities gain new buildings, nothing is duplicated."""
    report: list[str] = []
    for spec in load_communities(path).communities:
        existing = await services.communities.by_code(spec.code)
        if existing is None:
            pairs = [(b.code, b.name) for b in spec.buildings]
            await services.communities.add(spec.code, spec.name, pairs)
            report.append(f"added {spec.code} with {len(pairs)} buildings")
            continue
        new = [b for b in spec.buildings if existing.building(b.code) is None]
        for b in new:
            await services.communities.add_building(spec.code, b.code, b.name)
        report.append(f"{spec.code} exists; {len(new)} buildings added")
    return report
