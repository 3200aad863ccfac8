"""Demo volunteer activities for the sandbox (``content/demo/volunteers.yaml``): upcoming shifts to book, and the
volunteer persona's past service, so /myhours and /certificate show something at once.

The past is made the way it would have happened: the services run on a clock set back to before each past shift
(created, booked, checked in with that minute's code, approved after the end), so the history is real data through
the real rules, points included.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.app import App
from bot.domain.messaging import OutboxStatus
from bot.domain.outbox_admin import Selection
from bot.domain.volunteers import ShiftDraft, checkin_code
from bot.services.volunteer_desk import VolunteerDesk
from bot.services.volunteers import VolunteerService


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def seed_volunteers(app: App, path: Path, organiser: int, community_code: str) -> None:
    """Idempotent: the history once (when the volunteer persona has no service on record yet); upcoming activities when
    the community has none (a sandbox kept for weeks gets fresh ones once the old ones are over)."""
    data: dict[str, Any] = yaml.safe_load(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    community = await app.services.communities.by_code(community_code)
    assert community is not None
    zone = app.services.volunteers.zone(community)
    now = app.services.volunteers.now()
    history = data.get("history") or {}
    # The persona holds the volunteer role, so counts as one before any history: "no service on record" is the test.
    if history and not (await app.services.volunteers.hours(int(history["volunteer"]))).record.lines:
        await _history(app, history, organiser, zone, now)
    _, upcoming = await app.services.volunteer_desk.activities(organiser)
    if any(view.shift.starts_at > now for view in upcoming):
        return
    today = now.astimezone(zone).date()
    for item in data.get("activities", []):
        activity = await app.services.volunteer_desk.create_activity(
            organiser,
            title=item["title"],
            description=item.get("description", ""),
            place=item["place"],
            contact=item["contact"],
            track=item.get("track"),
            latitude=item.get("latitude"),
            longitude=item.get("longitude"),
        )
        for shift in item.get("shifts", []):
            if "in_minutes" in shift:  # soon after the sandbox starts (rounded to the minute)
                start = (now + timedelta(minutes=int(shift["in_minutes"]))).replace(second=0, microsecond=0)
                end = start + timedelta(minutes=int(shift["minutes"]))
            else:
                start, end = _span(today + timedelta(days=int(shift["day"])), shift["start"], shift["end"], zone)
            draft = ShiftDraft(
                start, end, int(shift["capacity"]), int(shift.get("points_per_hour", 2)), shift.get("note", ""),
                int(shift.get("cutoff_hours", 12)), int(shift.get("weeks", 1)),
            )  # fmt: skip
            await app.services.volunteer_desk.add_shifts(organiser, activity.id, draft)


async def _history(app: App, history: dict[str, Any], organiser: int, zone: ZoneInfo, now: datetime) -> None:
    volunteer = int(history["volunteer"])
    await app.services.volunteers.register(volunteer, "", "")
    for item in history.get("shifts", []):
        day = now.astimezone(zone).date() - timedelta(days=int(item["days_ago"]))
        start, end = _span(day, item["start"], item["end"], zone)
        clock = _Clock(start - timedelta(days=2))
        service = VolunteerService(app.uow, clock, app.services.points, timezone=str(zone))
        desk = VolunteerDesk(app.uow, clock, service)
        activity = await desk.create_activity(organiser, title=item["title"], description="", place="示范社区",
                                              contact="刘主任 021-5555 0101", track=item.get("track"))  # fmt: skip
        shift = (await desk.add_shifts(organiser, activity.id, ShiftDraft(start, end, 10, 2, "", 0)))[0]
        await service.book(volunteer, shift.id)
        clock.now = start
        await service.check_in(volunteer, shift.id, code=checkin_code(shift.secret, shift.id, start))
        clock.now = end + timedelta(hours=1)  # no check-out: the shift's end counts
        await desk.approve_all(organiser, shift.id)
    # What the bot said back then ("hours approved", a reminder) is history too: the persona's chat starts empty.
    async with app.uow() as uow:
        pending = await uow.outbox.matching(Selection(chat_id=volunteer, statuses=(OutboxStatus.PENDING,)))
        await uow.outbox.cancel_pending([row_id for row_id, _ in pending], now, "sandbox history")
        await uow.commit()


def _span(day: date, start: str, end: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    begin = datetime.combine(day, time.fromisoformat(start), zone)
    finish = datetime.combine(day, time.fromisoformat(end), zone)
    return begin.astimezone(ZoneInfo("UTC")), finish.astimezone(ZoneInfo("UTC"))
