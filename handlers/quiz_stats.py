"""/stats for organisers: awareness (知晓率) per track, participation and average score, per building.

Other features add their own figures as ``/stats <name>`` with ``@stats_view("<name>")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.conversation.context import Ctx
from bot.conversation.replies import Action, SendText
from bot.conversation.router import Handler, Router
from bot.domain.quiz import TRACKS
from bot.domain.quiz_figures import AwarenessRow
from bot.domain.roles import Role
from bot.services.quiz_stats import AwarenessReport

router = Router("qstats")
VIEWS: dict[str, Handler] = {}


def stats_view(name: str) -> Callable[[Handler], Handler]:
    """Make ``/stats <name>`` open ``handler`` (plain ``/stats`` shows awareness)."""

    def register(handler: Handler) -> Handler:
        VIEWS[name] = handler
        return handler

    return register


@router.command("stats", role=Role.ORGANISER)
async def stats(ctx: Ctx) -> Sequence[Action]:
    words = ctx.incoming.args.split()
    if words:
        view = VIEWS.get(words[0].lower())
        if view is None:
            return [SendText("quiz/stats_usage", {"unknown": ctx.incoming.args.strip(), "views": sorted(VIEWS)})]
        return await view(ctx)
    report = await ctx.services.quiz.stats.for_organiser(ctx.user_id)
    names = {t.key: t.name(ctx.locale) for t in ctx.services.quiz.library.tracks}
    return [
        SendText(
            "quiz/stats",
            {"report": report, "rows": [row_figures(r) for r in report.rows], "names": names, "tracks": TRACKS},
        )
    ]


def row_figures(row: AwarenessRow) -> dict[str, Any]:
    """Whole percentages of one row, for templates and the command line; None where the share is of nobody
    (no registered residents; no answers for the average score)."""
    residents = row.has_residents
    return {
        "scope": row.scope,
        "registered": row.registered,
        "tracks": {t: round(100 * row.share(t)) if residents else None for t in TRACKS},
        "participation": round(100 * row.participation) if residents else None,
        "average": round(100 * row.average) if row.answers else None,
    }


def awareness_table(report: AwarenessReport, everyone: str = "(community)") -> list[str]:
    """A plain-text table for ``sicheng stats awareness``."""
    header = ["scope", "registered", *TRACKS, "active_30d", "avg_score"]
    lines = [header]
    for row in report.rows:
        figures = row_figures(row)
        cells = [str(row.scope or everyone), str(row.registered)]
        cells += [_percent(figures["tracks"][t]) for t in TRACKS]
        cells += [_percent(figures["participation"]), _percent(figures["average"])]
        lines.append(cells)
    widths = [max(_width(line[i]) for line in lines) for i in range(len(header))]
    return ["  ".join(c + " " * (w - _width(c)) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]


def _percent(value: int | None) -> str:
    return "—" if value is None else f"{value}%"


def _width(text: str) -> int:
    """Terminal columns: CJK characters take two."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)
