"""How much a question bank can be passed without knowing anything: per track and language, the score of "always
pick the longest option", how often the correct option is the strictly longest, how much longer correct options are
than the distractors, which positions hold the answer, how often a "sounds official" word gives the answer away, and
the mix of multi-select questions.

These are the figures ``sicheng content stats`` prints next to their goals, and ``sicheng content check`` fails on a
goal missed. An honest awareness figure (知晓率) needs a bank a guesser cannot pass: a resident who scores must have
known the fact.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from content.quiz_bank import LOCALES, Question

# Goals (per track and language).
LONGEST_MAX = 0.35  # share of single-answer questions that "pick the longest option" gets right
STRICTLY_LONGEST_MAX = 0.35  # share where the correct option is strictly the longest
LENGTH_RATIO_MAX = 1.3  # median over questions of len(correct) / median len(distractors)
POSITION_MIN, POSITION_MAX = 0.15, 0.35  # share of questions whose answer is at each position (of the first four)
HINT_MAX = 0.10  # share of single-answer questions whose answer alone carries a hint word
ALL_BUT_ONE_MAX = 0.5  # share of multi-select questions with every option but one correct

# Hint words: the "sounds official, so it must be right" wording a guesser picks without knowing the fact. Kept short
# on purpose: each is a word question writers reach for to make the answer sound proper, rarely the fact itself.
HINT_WORDS: dict[str, tuple[str, ...]] = {
    "zh_Hans": ("规定", "依法", "依照", "应当", "及时", "按照", "必须", "正规", "合法"),
    "en": (
        "in line with",
        "in accordance with",
        "according to",
        "as required",
        "properly",
        "promptly",
        "regulations",
        "must",
        "by law",
        "lawful",
        "lawfully",
    ),
}
_EN_HINTS = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in HINT_WORDS["en"]) + r")\b", re.IGNORECASE)


def hint_words(text: str, locale: str) -> set[str]:
    """The hint words in ``text`` (English: whole words, any case; Chinese: anywhere)."""
    if locale == "en":
        return {found.lower() for found in _EN_HINTS.findall(text)}
    return {word for word in HINT_WORDS["zh_Hans"] if word in text}


@dataclass(frozen=True)
class Fairness:
    track: str
    locale: str
    questions: int
    single: int
    longest_score: float  # "pick the longest" (ties: the first of them) on single-answer questions
    strictly_longest: float
    length_ratio: float
    positions: tuple[float, ...]  # share of single-answer questions whose answer is at position 0, 1, 2, 3
    multi_mix: dict[str, int] = field(default_factory=dict)  # "2/4": questions with two of four options correct
    hints: float = 0.0  # share of single-answer questions with a hint word in the answer and in no distractor
    all_but_one: tuple[str, ...] = ()  # ids of multi-select questions where every option but one is correct

    @property
    def multi(self) -> int:
        """How many multi-select questions."""
        return sum(self.multi_mix.values())

    def problems(self) -> list[str]:
        """Goals this track misses, in words (empty when it meets them all).

        Multi-select: "tick everything but the odd one out" is a guess that works when most multi-select questions
        have every option but one correct. One such question is fine; the track misses the goal when they are more
        than half of its multi-select questions (goal: a real mix of two, three ... correct), and the problem names
        them so a writer knows which to rework.
        """
        found = []
        if self.longest_score > LONGEST_MAX:
            found.append(f"picking the longest option scores {self.longest_score:.0%} (goal ≤ {LONGEST_MAX:.0%})")
        if self.strictly_longest > STRICTLY_LONGEST_MAX:
            found.append(
                f"the answer is the strictly longest option in {self.strictly_longest:.0%} "
                f"(goal ≤ {STRICTLY_LONGEST_MAX:.0%})"
            )
        if self.length_ratio > LENGTH_RATIO_MAX:
            found.append(f"answers are {self.length_ratio:.2f}× the distractors' length (goal ≤ {LENGTH_RATIO_MAX})")
        for position, share in enumerate(self.positions):
            if self.single and not POSITION_MIN <= share <= POSITION_MAX:
                found.append(
                    f"option {position + 1} is the answer in {share:.0%} (goal {POSITION_MIN:.0%}–{POSITION_MAX:.0%})"
                )
        if self.hints > HINT_MAX:
            examples = ", ".join(HINT_WORDS.get(self.locale, HINT_WORDS["zh_Hans"])[:3])
            found.append(f"only the answer has a hint word ({examples} …) in {self.hints:.0%} (goal ≤ {HINT_MAX:.0%})")
        if self.multi and len(self.all_but_one) > ALL_BUT_ONE_MAX * self.multi:
            found.append(
                f"{len(self.all_but_one)} of {self.multi} multi-select questions have every option but one correct "
                f"({', '.join(self.all_but_one)}; goal: at most {ALL_BUT_ONE_MAX:.0%})"
            )
        return found


def fairness(track: str, questions: Sequence[Question], locale: str) -> Fairness:
    """The figures of one track's questions in one language."""
    single = [q for q in questions if len(q.correct) == 1]
    longest = strictly = 0
    ratios: list[float] = []
    positions: Counter[int] = Counter()
    hinted = 0
    for question in single:
        options = question.text(locale).options
        hinted += _gives_away(options, question.correct[0], locale)
        lengths = [len(option.strip()) for option in options]
        answer = question.correct[0]
        longest += lengths.index(max(lengths)) == answer
        others = [n for i, n in enumerate(lengths) if i != answer]
        strictly += all(lengths[answer] > n for n in others)
        if others and median(others) > 0:
            ratios.append(lengths[answer] / median(others))
        positions[answer] += 1
    several = [q for q in questions if len(q.correct) > 1]
    multi: Counter[str] = Counter(f"{len(q.correct)}/{len(q.text(locale).options)}" for q in several)
    count = len(single)
    return Fairness(
        track=track,
        locale=locale,
        questions=len(questions),
        single=count,
        longest_score=longest / count if count else 0.0,
        strictly_longest=strictly / count if count else 0.0,
        length_ratio=median(ratios) if ratios else 0.0,
        positions=tuple(positions[p] / count if count else 0.0 for p in range(4)),
        multi_mix=dict(sorted(multi.items())),
        hints=hinted / count if count else 0.0,
        all_but_one=tuple(q.id for q in several if len(q.correct) == len(q.text(locale).options) - 1),
    )


def _gives_away(options: Sequence[str], answer: int, locale: str) -> bool:
    """Whether a hint word is in the answer and in none of the distractors."""
    in_distractors = set().union(*(hint_words(o, locale) for i, o in enumerate(options) if i != answer))
    return bool(hint_words(options[answer], locale) - in_distractors)


def bank_fairness(tracks: dict[str, Sequence[Question]]) -> list[Fairness]:
    """Every track in every language."""
    return [fairness(track, questions, locale) for track, questions in tracks.items() for locale in LOCALES]
