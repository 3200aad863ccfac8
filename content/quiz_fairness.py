"""How much a question bank can be passed without knowing anything: per track and language, the score of "always
pick the longest option", how often the correct option is the strictly longest, how much longer correct options are
than the distractors, which positions hold the answer, and the mix of multi-select questions.

These are the figures ``sicheng content stats`` prints next to their goals. An honest awareness figure (知晓率) needs
a bank a guesser cannot pass: a resident who scores must have known the fact.
"""

from __future__ import annotations

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

    def problems(self) -> list[str]:
        """Goals this track misses, in words (empty when it meets them all)."""
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
        return found


def fairness(track: str, questions: Sequence[Question], locale: str) -> Fairness:
    """The figures of one track's questions in one language."""
    single = [q for q in questions if len(q.correct) == 1]
    longest = strictly = 0
    ratios: list[float] = []
    positions: Counter[int] = Counter()
    for question in single:
        options = question.text(locale).options
        lengths = [len(option.strip()) for option in options]
        answer = question.correct[0]
        longest += lengths.index(max(lengths)) == answer
        others = [n for i, n in enumerate(lengths) if i != answer]
        strictly += all(lengths[answer] > n for n in others)
        if others and median(others) > 0:
            ratios.append(lengths[answer] / median(others))
        positions[answer] += 1
    multi: Counter[str] = Counter(
        f"{len(q.correct)}/{len(q.text(locale).options)}" for q in questions if len(q.correct) > 1
    )
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
    )


def bank_fairness(tracks: dict[str, Sequence[Question]]) -> list[Fairness]:
    """Every track in every language."""
    return [fairness(track, questions, locale) for track, questions in tracks.items() for locale in LOCALES]
