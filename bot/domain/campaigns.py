"""Campaign notices (通知公告): what an organiser sends to whom and when, quiet hours and delivery figures.

A campaign is written once (HTML text in Telegram's parse mode, an optional photo, a track tag, buttons, an
audience) and fans out, when it is due, into one outbox row per recipient. Standard library only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from bot.domain.errors import DomainError
from bot.domain.roles import Role

TRACKS = ("civilised", "sanitary", "garden", "food_safety")
# The notice template puts a header (track, community) and a footer around the organiser's text; these limits
# leave room for both inside Telegram's 4096 (message) and 1024 (caption) characters.
BODY_LIMIT = 3800
CAPTION_BODY_LIMIT = 850
BUTTONS_MAX = 4
URL_LABEL_MAX = 32
# How often the organiser's progress message may be edited while a campaign is sending.
PROGRESS_EVERY = timedelta(seconds=5)
# Telegram charges 0.1 Star per message sent with allow_paid_broadcast (up to 1,000 messages/s).
PAID_STARS_PER_MESSAGE = 0.1
PAID_RATE = 1000
FREE_RATE = 30
# A campaign scheduled more than this far ahead is most likely a typo.
SCHEDULE_HORIZON = timedelta(days=92)
RECENT_DAYS = 30


class AudienceKind(StrEnum):
    ALL = "all"  # every registered resident of the community
    BUILDINGS = "buildings"  # residents of chosen buildings
    TRACK = "track"  # residents subscribed to a track
    ROLE = "role"  # volunteers, grid workers (organisers count as grid workers)
    GROUPS = "groups"  # the community's linked residents' group chats


AUDIENCE_ROLES = (Role.VOLUNTEER, Role.GRID_WORKER)


class CampaignStatus(StrEnum):
    SCHEDULED = "scheduled"
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class ButtonKind(StrEnum):
    QUIZ = "quiz"  # take a quiz of a track
    REWARDS = "rewards"  # see the rewards
    REPORT = "report"  # report a problem (随手拍)
    URL = "url"  # open a web page
    ACTIVITY = "activity"  # open a volunteer activity (value: its id; label: its title when added)


class CampaignError(DomainError):
    """A notice that cannot be sent as composed; ``code`` names the reason in the organiser's message."""

    template = "notices/problem"

    def __init__(self, code: str, **context: Any) -> None:
        super().__init__(code, code=code, **context)
        self.code = code


@dataclass(frozen=True)
class Audience:
    kind: AudienceKind = AudienceKind.ALL
    buildings: tuple[int, ...] = ()
    track: str | None = None
    role: Role | None = None

    def __post_init__(self) -> None:
        if self.kind is AudienceKind.BUILDINGS and not self.buildings:
            raise CampaignError("no_buildings")
        if self.kind is AudienceKind.TRACK and self.track not in TRACKS:
            raise CampaignError("unknown_track")
        if self.kind is AudienceKind.ROLE and self.role not in AUDIENCE_ROLES:
            raise CampaignError("unknown_role")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "buildings": list(self.buildings),
            "track": self.track,
            "role": self.role.value if self.role else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Audience:
        return cls(
            AudienceKind(data.get("kind", "all")),
            tuple(int(b) for b in data.get("buildings") or ()),
            data.get("track"),
            Role(data["role"]) if data.get("role") else None,
        )


@dataclass(frozen=True)
class NoticeButton:
    kind: ButtonKind
    value: str = ""  # the track of a quiz button, the address of a URL button, the id of an activity
    label: str = ""  # a URL button's text, an activity's title (the others are labelled in the reader's language)

    def __post_init__(self) -> None:
        if self.kind is ButtonKind.QUIZ and self.value not in TRACKS:
            raise CampaignError("unknown_track")
        if self.kind is ButtonKind.ACTIVITY and not (self.value.isascii() and self.value.isdigit()):
            raise CampaignError("unknown_activity")
        if self.kind is ButtonKind.URL:
            if not valid_url(self.value):
                raise CampaignError("bad_url")
            if not self.label.strip() or len(self.label) > URL_LABEL_MAX:
                raise CampaignError("bad_url_label", limit=URL_LABEL_MAX)

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind.value, "value": self.value, "label": self.label}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NoticeButton:
        return cls(ButtonKind(data["kind"]), str(data.get("value", "")), str(data.get("label", "")))


def valid_url(url: str) -> bool:
    """Telegram accepts http(s) and tg:// links on buttons; anything else (javascript:, spaces) is refused."""
    if len(url) > 512 or any(c.isspace() for c in url):
        return False
    scheme, sep, rest = url.partition("://")
    host = rest.split("/")[0].split("?")[0]
    if not sep or not host:
        return False
    if scheme.lower() == "tg":
        return True
    return scheme.lower() in ("http", "https") and "." in host.strip(".")


@dataclass(frozen=True)
class Counts:
    """Where a campaign's deliveries are: sent, skipped (recipient blocked the bot), failed, still pending."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0
    pending: int = 0
    cancelled: int = 0

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.failed + self.cancelled

    @property
    def total(self) -> int:
        return self.done + self.pending

    def to_json(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "pending": self.pending,
            "cancelled": self.cancelled,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Counts:
        data = data or {}
        return cls(*(int(data.get(k, 0)) for k in ("sent", "skipped", "failed", "pending", "cancelled")))

    @classmethod
    def from_statuses(cls, by_status: dict[str, int]) -> Counts:
        return cls(
            by_status.get("sent", 0),
            by_status.get("skipped", 0),
            by_status.get("failed", 0),
            by_status.get("pending", 0),
            by_status.get("cancelled", 0),
        )

    def eta(self, started_at: datetime, now: datetime, waiting: int = 0) -> timedelta | None:
        """Time left at the pace so far (None before anything was done). ``waiting``: rows held by quiet hours,
        which do not count against the pace."""
        elapsed = (now - started_at).total_seconds()
        if self.done == 0 or elapsed <= 0:
            return None
        left = max(0, self.pending - waiting)
        return timedelta(seconds=math.ceil(left * elapsed / self.done))


@dataclass(frozen=True)
class Campaign:
    id: int
    community_id: int
    author_id: int | None
    status: CampaignStatus
    body: str
    send_at: datetime
    created_at: datetime
    audience: Audience = field(default_factory=Audience)
    track: str | None = None
    photo: str | None = None
    buttons: tuple[NoticeButton, ...] = ()
    urgent: bool = False
    paid: bool = False
    repeat_weekly: bool = False
    template: str | None = None  # a notice from the content library (its text is in each language)
    series_id: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    recipients: int = 0
    counts: Counts = field(default_factory=Counts)
    failures: dict[str, int] = field(default_factory=dict)
    progress_chat_id: int | None = None
    progress_at: datetime | None = None

    def with_(self, **fields: Any) -> Campaign:
        return replace(self, **fields)


@dataclass(frozen=True)
class Draft:
    """What an organiser composed, before it is a campaign. ``send_at`` None: now."""

    community_id: int
    body: str = ""
    audience: Audience = field(default_factory=Audience)
    track: str | None = None
    photo: str | None = None
    buttons: tuple[NoticeButton, ...] = ()
    urgent: bool = False
    paid: bool = False
    repeat_weekly: bool = False
    template: str | None = None
    send_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.track is not None and self.track not in TRACKS:
            raise CampaignError("unknown_track")
        if len(self.buttons) > BUTTONS_MAX:
            raise CampaignError("too_many_buttons", limit=BUTTONS_MAX)
        if not self.body.strip() and self.template is None:
            raise CampaignError("empty")


@dataclass(frozen=True)
class QuietHours:
    """Local minutes of the day [start, end) when notices wait (a span over midnight when start > end)."""

    start: int = 22 * 60
    end: int = 8 * 60

    def __post_init__(self) -> None:
        if not (0 <= self.start < 1440 and 0 <= self.end < 1440) or self.start == self.end:
            raise CampaignError("bad_quiet_hours")

    def contains(self, local: time) -> bool:
        minute = local.hour * 60 + local.minute
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def release(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """When a notice due ``now`` may be delivered: None when now is outside quiet hours."""
        local = now.astimezone(zone)
        if not self.contains(local.time()):
            return None
        end = local.replace(hour=self.end // 60, minute=self.end % 60, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(now.tzinfo)

    def label(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}–{self.end // 60:02d}:{self.end % 60:02d}"


DEFAULT_QUIET = QuietHours()
# Choices offered in /settings (start, end in local minutes); None turns quiet hours off.
QUIET_CHOICES: tuple[QuietHours | None, ...] = (
    QuietHours(22 * 60, 8 * 60),
    QuietHours(21 * 60, 7 * 60),
    QuietHours(23 * 60, 9 * 60),
    QuietHours(12 * 60, 14 * 60),
    None,
)


@dataclass(frozen=True)
class Preferences:
    """A resident's notice settings; a resident who never opened them has the defaults."""

    notices_off: bool = False
    quiet: QuietHours | None = DEFAULT_QUIET
    tracks: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Recipient:
    chat_id: int
    locale: str
    quiet: QuietHours | None = DEFAULT_QUIET


def parse_local_time(text: str, now: datetime, zone: ZoneInfo) -> datetime:
    """A time typed by an organiser in the community's time zone: ``HH:MM`` (today, or tomorrow when past),
    ``MM-DD HH:MM`` or ``YYYY-MM-DD HH:MM`` (full-width digits and colon accepted). Raises CampaignError."""
    cleaned = text.strip().translate(_FULL_WIDTH).replace("/", "-").replace("T", " ")
    cleaned = " ".join(cleaned.split())
    local_now = now.astimezone(zone)
    try:
        if " " not in cleaned:
            moment = datetime.strptime(cleaned, "%H:%M")
            at = local_now.replace(hour=moment.hour, minute=moment.minute, second=0, microsecond=0)
            if at <= local_now:
                at += timedelta(days=1)
        elif cleaned.count("-") == 1:
            moment = datetime.strptime(f"{local_now.year}-{cleaned}", "%Y-%m-%d %H:%M")
            at = moment.replace(tzinfo=zone)
        else:
            at = datetime.strptime(cleaned, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise CampaignError("bad_time") from None
    return check_schedule(at.astimezone(now.tzinfo), now)


def check_schedule(at: datetime, now: datetime) -> datetime:
    if at <= now:
        raise CampaignError("time_in_past")
    if at - now > SCHEDULE_HORIZON:
        raise CampaignError("time_too_far", days=SCHEDULE_HORIZON.days)
    return at


def paid_cost(recipients: int) -> float:
    """Telegram Stars a paid broadcast to this many recipients costs."""
    return round(recipients * PAID_STARS_PER_MESSAGE, 1)


_FULL_WIDTH = str.maketrans("０１２３４５６７８９：－　", "0123456789:- ")
