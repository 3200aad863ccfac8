"""The validated question bank, cards and tracks as the quiz domain's ``Library``."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import content
from bot.domain.quiz import Card, CardText, Library, Question, QuestionText, TrackInfo
from content import quiz_bank
from content.tracks import load_tracks

LOCALES = ("zh_Hans", "en")
# YAML's folded blocks join lines with a space, which Chinese text does not use between characters.
_CJK_GAP = re.compile(r"(?<=[\u3000-\u9fff\uff00-\uffef])\s+(?=[\u3000-\u9fff\uff00-\uffef])")


@lru_cache(maxsize=4)
def load_library(root: Path = content.ROOT) -> Library:
    """Load tracks, questions and cards under ``root`` (raises BankError); cached, the library is immutable."""
    tracks = tuple(
        TrackInfo(
            t.key,
            t.emoji,
            {loc: t.text(loc).name for loc in LOCALES},
            {loc: _unfold(t.text(loc).description) for loc in LOCALES},
        )
        for t in load_tracks(root / "tracks.yaml")
    )
    bank = quiz_bank.load_bank(root)
    questions = {q.id: _question(track, q) for track, qs in bank.tracks.items() for q in qs}
    cards = tuple(_card(track, c) for track, cs in quiz_bank.load_cards(root).items() for c in cs)
    return Library(tracks, questions, cards)


def _question(track: str, q: quiz_bank.Question) -> Question:
    texts = {loc: QuestionText(q.text(loc).question, q.text(loc).options, q.text(loc).explanation) for loc in LOCALES}
    return Question(q.id, track, frozenset(q.correct), texts, frozenset(q.tags))


def _card(track: str, c: quiz_bank.Card) -> Card:
    texts = {loc: CardText(c.text(loc).title, c.text(loc).body, getattr(c.source, loc)) for loc in LOCALES}
    return Card(c.id, track, texts, frozenset(c.quiz_tags))


def _unfold(text: str) -> str:
    return _CJK_GAP.sub("", text)
