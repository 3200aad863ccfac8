"""Buttons that volunteer notices carry (declared once; the ``vo``/``vd`` routers bind them)."""

from __future__ import annotations

from bot.domain.actions import declare

# to a volunteer
OFFER_CONFIRM = declare("vo", "yes", int)  # booking: take the place offered from the waitlist
OFFER_DECLINE = declare("vo", "no", int)  # booking: let the next one have it
CANT_COME = declare("vo", "cant", int)  # booking: from a reminder, free the place
OPEN_SHIFT = declare("vo", "shift", int)  # shift card
OPEN_ACTIVITY = declare("vo", "act", int)  # activity card (a notice button opens it)
MY_HOURS = declare("vo", "hours")
# to an organiser
APPROVE_VOLUNTEER = declare("vd", "vok", int)  # resident id
REFUSE_VOLUNTEER = declare("vd", "vno", int)
ROSTER = declare("vd", "roster", int)  # shift
HOURS = declare("vd", "hrs", int)  # shift: approve hours
