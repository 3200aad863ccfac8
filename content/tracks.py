"""The four tracks (四城) and their names and descriptions per locale."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

TRACK_KEYS = ("civilised", "sanitary", "garden", "food_safety")


class TrackText(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1, max_length=40)
    description: str = Field(min_length=20, max_length=900)


class Track(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    key: str
    emoji: str
    zh_Hans: TrackText
    en: TrackText

    def text(self, locale: str) -> TrackText:
        """Name and description in a locale (Chinese when unknown)."""
        return self.en if locale == "en" else self.zh_Hans


class TrackFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tracks: list[Track]


def load_tracks(path: Path) -> list[Track]:
    """Load and validate tracks; exactly the four known keys, in order."""
    tracks = TrackFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))).tracks
    keys = tuple(t.key for t in tracks)
    if keys != TRACK_KEYS:
        raise ValueError(f"tracks must be {TRACK_KEYS}, found {keys}")
    return tracks
