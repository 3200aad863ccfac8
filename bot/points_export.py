"""The 积分台账 (every entry of the points ledger) and the 兑换记录 (every redemption) as spreadsheets.

xlsx: the lines, then totals (per resident and per reason; per reward and per service point); csv: the lines only, in
UTF-8 with a byte-order mark so that Excel shows the Chinese text. Residents are masked as the 问题台账 masks reporters
(王** / 1000****); service points are staff, named in full like the 问题台账's assignees. Redemption codes are shown
half (``ABCD-****``): enough to find a resident's redemption, not enough to collect it. Times are local to the
community's zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Literal

from bot.domain.points import Reason, mask_name
from bot.domain.rewards import RedemptionStatus
from bot.export import local_time, write_book, write_csv
from bot.services.ports import Holder, LedgerLine, RedemptionLine
from bot.services.report_stats import mask_id

Label = Callable[[str], str]
Cell = str | int | float
Format = Literal["xlsx", "csv"]

ENTRY_COLUMNS = ("at", "resident", "building", "amount", "reason", "reference", "note", "balance", "expires_at")
RESIDENT_COLUMNS = ("resident", "building", "entries", "credited", "debited", "net", "balance_end")
REASON_COLUMNS = ("reason", "entries", "residents", "points")
REDEMPTION_COLUMNS = (
    "created_at", "resident", "building", "reward", "cost", "status", "code", "valid_until", "verified_at",
    "service_point", "closed_at",
)  # fmt: skip
REWARD_COLUMNS = ("reward", "redemptions", "reserved", "fulfilled", "cancelled", "expired", "points_spent")
SERVICE_POINT_COLUMNS = ("service_point", "fulfilled", "points_spent")
WIDTHS = {
    "at": 17, "resident": 18, "building": 12, "reason": 16, "reference": 20, "note": 30, "expires_at": 17,
    "created_at": 17, "reward": 22, "valid_until": 17, "verified_at": 17, "service_point": 20, "closed_at": 17,
}  # fmt: skip
HELD = (RedemptionStatus.RESERVED, RedemptionStatus.FULFILLED)  # the points stay spent (not refunded)
CODE_PREFIX = "redemption:"


@dataclass(frozen=True)
class PointsRow:
    """One ledger entry as the export shows it: the resident masked, the code in a reference halved."""

    at: datetime
    resident: str
    building: str
    amount: int
    reason: Reason
    reference: str
    note: str
    balance: int
    expires_at: datetime | None
    resident_id: int


@dataclass(frozen=True)
class RedemptionRecord:
    """One redemption as the export shows it. ``verified_at`` is set for a fulfilled one, ``closed_at`` for a
    cancelled or expired one."""

    created_at: datetime
    resident: str
    building: str
    reward: str
    cost: int
    status: RedemptionStatus
    code: str
    valid_until: datetime
    verified_at: datetime | None
    service_point: str
    closed_at: datetime | None
    reward_id: int


def masked(holder: Holder) -> str:
    """王** / 1000****, as the 问题台账 shows a reporter."""
    return f"{mask_name(holder.name)} / {mask_id(holder.telegram_id)}"


def half_code(code: str) -> str:
    """``ABCD-****``: which redemption it is, without what a service point would accept."""
    return f"{code[:4]}-****"


def points_rows(lines: Iterable[LedgerLine]) -> list[PointsRow]:
    """Lines of ``PointsService.ledger`` as the export shows them, in the same order."""
    return [
        PointsRow(
            at=line.entry.at,
            resident=masked(line.holder),
            building=line.holder.building or "",
            amount=line.entry.amount,
            reason=line.entry.reason,
            reference=_reference(line.entry.ref),
            note=line.entry.note or "",
            balance=line.balance,
            expires_at=line.expires_at if line.entry.amount > 0 else None,
            resident_id=line.holder.resident_id,
        )
        for line in lines
    ]


def redemption_rows(lines: Iterable[RedemptionLine], locale: str) -> list[RedemptionRecord]:
    """Lines of ``PointsService.redemption_ledger`` as the export shows them (rewards named in ``locale``)."""
    rows = []
    for line in lines:
        r = line.redemption
        fulfilled = r.status is RedemptionStatus.FULFILLED
        rows.append(
            RedemptionRecord(
                created_at=r.created_at,
                resident=masked(line.holder),
                building=line.holder.building or "",
                reward=line.reward.title(locale),
                cost=r.cost,
                status=r.status,
                code=half_code(r.code),
                valid_until=r.expires_at,
                verified_at=r.closed_at if fulfilled else None,
                service_point=(line.verifier or "—") if fulfilled else "",
                closed_at=r.closed_at if not fulfilled else None,
                reward_id=r.reward_id,
            )
        )
    return rows


# ---- the points ledger -------------------------------------------------------------------------------------------


def write_points_export(path: Path, rows: Sequence[PointsRow], *, fmt: Format, label: Label, tz: tzinfo) -> Path:
    """Write the ledger to ``path``: xlsx with three sheets (entries, per resident, per reason) or csv (entries).

    ``label`` maps a full key (``points_export.amount``) to text."""
    lines = entry_table(rows, label, tz)
    if fmt == "csv":
        return write_csv(path, lines)
    return _book(
        path,
        fmt,
        label,
        (
            ("points_export.sheet_entries", ENTRY_COLUMNS, lines),
            ("points_export.sheet_residents", RESIDENT_COLUMNS, resident_table(rows, label)),
            ("points_export.sheet_reasons", REASON_COLUMNS, reason_table(rows, label)),
        ),
    )


def entry_table(rows: Sequence[PointsRow], label: Label, tz: tzinfo) -> list[list[Cell]]:
    """Header and one line per ledger entry."""
    header: list[Cell] = [label(f"points_export.{c}") for c in ENTRY_COLUMNS]
    body: list[list[Cell]] = [
        [
            local_time(r.at, tz),
            r.resident,
            r.building,
            r.amount,
            _reason(r.reason, label),
            r.reference,
            r.note,
            r.balance,
            local_time(r.expires_at, tz),
        ]
        for r in rows
    ]
    return [header, *body]


def resident_table(rows: Sequence[PointsRow], label: Label) -> list[list[Cell]]:
    """Header, one line per resident (entries, points credited, debited, net, balance after their last entry of the
    period), most net points first, and a total."""
    groups: dict[int, list[PointsRow]] = {}
    for r in rows:
        groups.setdefault(r.resident_id, []).append(r)
    body: list[list[Cell]] = []
    for mine in groups.values():
        last = mine[-1]
        body.append([last.resident, last.building, *_sums(mine), last.balance])
    body.sort(key=lambda line: (-int(line[5]), str(line[0])))
    header: list[Cell] = [label(f"points_export.{c}") for c in RESIDENT_COLUMNS]
    return [header, *body, [label("points_export.total"), "", *_sums(rows), ""]]


def reason_table(rows: Sequence[PointsRow], label: Label) -> list[list[Cell]]:
    """Header, one line per reason that moved points (entries, residents, points; debits negative) and a total."""
    header: list[Cell] = [label(f"points_export.{c}") for c in REASON_COLUMNS]
    body: list[list[Cell]] = []
    for reason in Reason:
        mine = [r for r in rows if r.reason is reason]
        if mine:
            people = len({r.resident_id for r in mine})
            body.append([_reason(reason, label), len(mine), people, sum(r.amount for r in mine)])
    everyone = len({r.resident_id for r in rows})
    return [header, *body, [label("points_export.total"), len(rows), everyone, sum(r.amount for r in rows)]]


def _sums(rows: Sequence[PointsRow]) -> list[Cell]:
    credited = sum(r.amount for r in rows if r.amount > 0)
    debited = sum(r.amount for r in rows if r.amount < 0)
    return [len(rows), credited, debited, credited + debited]


# ---- redemptions -------------------------------------------------------------------------------------------------


def write_redemption_export(
    path: Path, rows: Sequence[RedemptionRecord], *, fmt: Format, label: Label, tz: tzinfo
) -> Path:
    """Write the redemptions to ``path``: xlsx with three sheets (redemptions, per reward, per service point) or csv
    (redemptions)."""
    lines = redemption_table(rows, label, tz)
    if fmt == "csv":
        return write_csv(path, lines)
    return _book(
        path,
        fmt,
        label,
        (
            ("points_export.sheet_redemptions", REDEMPTION_COLUMNS, lines),
            ("points_export.sheet_rewards", REWARD_COLUMNS, reward_table(rows, label)),
            ("points_export.sheet_service_points", SERVICE_POINT_COLUMNS, service_point_table(rows, label)),
        ),
    )


def redemption_table(rows: Sequence[RedemptionRecord], label: Label, tz: tzinfo) -> list[list[Cell]]:
    """Header and one line per redemption."""
    header: list[Cell] = [label(f"points_export.{c}") for c in REDEMPTION_COLUMNS]
    body: list[list[Cell]] = [
        [
            local_time(r.created_at, tz),
            r.resident,
            r.building,
            r.reward,
            r.cost,
            label(f"points_export.status_{r.status.value}"),
            r.code,
            local_time(r.valid_until, tz),
            local_time(r.verified_at, tz),
            r.service_point,
            local_time(r.closed_at, tz),
        ]
        for r in rows
    ]
    return [header, *body]


def reward_table(rows: Sequence[RedemptionRecord], label: Label) -> list[list[Cell]]:
    """Header, one line per reward (redemptions by status, points spent less refunds), most redeemed first, and a
    total."""
    groups: dict[int, list[RedemptionRecord]] = {}
    for r in rows:
        groups.setdefault(r.reward_id, []).append(r)
    body: list[list[Cell]] = [[mine[0].reward, *_statuses(mine)] for mine in groups.values()]
    body.sort(key=lambda line: (-int(line[1]), str(line[0])))
    header: list[Cell] = [label(f"points_export.{c}") for c in REWARD_COLUMNS]
    return [header, *body, [label("points_export.total"), *_statuses(rows)]]


def service_point_table(rows: Sequence[RedemptionRecord], label: Label) -> list[list[Cell]]:
    """Header, one line per service point that verified codes (redemptions handed over, their points) and a
    total."""
    groups: dict[str, list[RedemptionRecord]] = {}
    for r in rows:
        if r.status is RedemptionStatus.FULFILLED:
            groups.setdefault(r.service_point, []).append(r)
    body: list[list[Cell]] = [[name, len(mine), sum(r.cost for r in mine)] for name, mine in groups.items()]
    body.sort(key=lambda line: (-int(line[1]), str(line[0])))
    handed = [r for mine in groups.values() for r in mine]
    header: list[Cell] = [label(f"points_export.{c}") for c in SERVICE_POINT_COLUMNS]
    return [header, *body, [label("points_export.total"), len(handed), sum(r.cost for r in handed)]]


def _statuses(rows: Sequence[RedemptionRecord]) -> list[Cell]:
    counts: list[Cell] = [sum(1 for r in rows if r.status is status) for status in RedemptionStatus]
    return [len(rows), *counts, sum(r.cost for r in rows if r.status in HELD)]


# ---- shared ------------------------------------------------------------------------------------------------------


def _book(
    path: Path,
    fmt: Format,
    label: Label,
    sheets: Sequence[tuple[str, Sequence[str], Sequence[Sequence[Cell]]]],
) -> Path:
    if fmt != "xlsx":
        raise ValueError(f"unknown format {fmt!r}")
    return write_book(path, [(label(title), columns, lines) for title, columns, lines in sheets], WIDTHS)


def _reference(ref: str) -> str:
    """The entry's reference (a report's ticket, ``round:12``, ``shift:3``...), a redemption code halved."""
    if ref.startswith(CODE_PREFIX):
        return CODE_PREFIX + half_code(ref.removeprefix(CODE_PREFIX))
    return ref


def _reason(reason: Reason, label: Label) -> str:
    return label(f"points_export.reason_{reason.value}")
