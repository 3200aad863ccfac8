"""Quiz figures: who knows a track (awareness), participation, average score, group leaderboards."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.domain.points import mask_name
from bot.domain.quiz import TRACKS
from bot.domain.roles import STAFF, Role

# People who hold one of these roles in a community work there: they are not counted among its residents.
NOT_RESIDENTS = STAFF | {Role.SERVICE_POINT}

# A resident "knows" a track after answering at least this many of its questions, this share correctly.
KNOWS_MIN_ANSWERED, KNOWS_MIN_SHARE = 8, 0.8


def knows(answered: int, correct: int) -> bool:
    """Answered enough of a track's questions, and enough of them (last answer counts) correctly."""
    return answered >= KNOWS_MIN_ANSWERED and correct >= KNOWS_MIN_SHARE * answered


@dataclass(frozen=True)
class ResidentProgress:
    """One registered resident's quiz figures: per track (answered, correct), and the last 30 days."""

    resident_id: int
    building: str | None
    tracks: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    recent_answers: int = 0
    recent_correct: int = 0


@dataclass(frozen=True)
class AwarenessRow:
    """Figures for a community (``scope`` None) or one building."""

    scope: str | None
    registered: int
    knows: Mapping[str, int]
    participants: int
    answers: int
    correct: int

    @property
    def has_residents(self) -> bool:
        """Shares of nobody are undefined (shown as "—", never as 0%)."""
        return self.registered > 0

    def share(self, track: str) -> float:
        return self.knows.get(track, 0) / self.registered if self.registered else 0.0

    @property
    def participation(self) -> float:
        return self.participants / self.registered if self.registered else 0.0

    @property
    def average(self) -> float:
        """Share of correct answers in the window."""
        return self.correct / self.answers if self.answers else 0.0


def awareness(people: Iterable[ResidentProgress], buildings: Sequence[str] = ()) -> list[AwarenessRow]:
    """The community row first, then one row per building: every building named in ``buildings`` (in that
    order, even with nobody registered), then any other a resident lives in (by name). Residents without a
    building count once, in the community row."""
    everyone = list(people)
    named = list(dict.fromkeys(buildings))
    named += sorted({p.building for p in everyone if p.building is not None} - set(named))
    rows = [_row(None, everyone)]
    rows.extend(_row(b, [p for p in everyone if p.building == b]) for b in named)
    return rows


def _row(scope: str | None, people: list[ResidentProgress]) -> AwarenessRow:
    counts = {t: sum(1 for p in people if knows(*p.tracks.get(t, (0, 0)))) for t in TRACKS}
    return AwarenessRow(
        scope,
        len(people),
        counts,
        sum(1 for p in people if p.recent_answers > 0),
        sum(p.recent_answers for p in people),
        sum(p.recent_correct for p in people),
    )


@dataclass(frozen=True)
class Standing:
    name: str
    correct: int
    answered: int


def leaderboard(
    answers: Iterable[tuple[int, str, bool]], size: int = 10, buildings: Mapping[int, str] | None = None
) -> list[Standing]:
    """(telegram id, shown name, correct) answers → best first: most correct, then fewest tries. Shown names
    that collide are told apart with ``buildings`` (telegram id → building name), see :func:`distinguish`."""
    tally: dict[int, Standing] = {}
    for who, name, correct in answers:
        old = tally.get(who, Standing(name, 0, 0))
        tally[who] = Standing(name, old.correct + int(correct), old.answered + 1)
    ranked = sorted(tally.items(), key=lambda item: (-item[1].correct, item[1].answered, item[0]))[:size]
    where = buildings or {}
    names = distinguish([(standing.name, where.get(who)) for who, standing in ranked])
    return [Standing(name, s.correct, s.answered) for name, (_, s) in zip(names, ranked, strict=True)]


def distinguish(entries: Sequence[tuple[str, str | None]]) -> list[str]:
    """Masked names as one ranking shows them, in order: a name shared by several (李** for 李娟 and 李强) gets
    the person's building ("李** · 3号楼"), and where that still does not tell them apart, a number in order of
    rank ("李** · 3号楼 (2)"). Nothing more of anyone's name is shown; unique names stay as they are."""
    counts = Counter(name for name, _ in entries)
    labels = [name if counts[name] == 1 else f"{name} · {where}" if where else name for name, where in entries]
    repeats = Counter(labels)
    seen: Counter[str] = Counter()
    shown = []
    for label in labels:
        seen[label] += 1
        shown.append(label if repeats[label] == 1 else f"{label} ({seen[label]})")
    return shown


def mask(name: str | None) -> str:
    """Group leaderboards show names as rankings do (李**)."""
    return mask_name(name)
