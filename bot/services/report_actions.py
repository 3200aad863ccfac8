"""The report actions that notices offer as buttons, declared once.

Staff handle a report from its card in the staff group or from a private notice (``rs``: handlers/report_staff.py);
the reporter answers 回头看, "is it fixed?" (``rf``: handlers/report_followup.py). Those routers bind their handlers
to these references, so a renamed action fails at start-up instead of leaving dead buttons in the outbox.
"""

from __future__ import annotations

from bot.domain.actions import declare

STAFF_TAKE = declare("rs", "take", int)  # accept and assign (asks whom to)
STAFF_REJECT = declare("rs", "reject", int)  # reject (asks why)
STAFF_START = declare("rs", "start", int)
STAFF_FIX = declare("rs", "fix", int)  # resolve (asks for the after-photo and a note in private)
STAFF_CLOSE = declare("rs", "close", int)  # 销号 after a re-visit
STAFF_REOPEN = declare("rs", "reopen", int)
STAFF_REASSIGN = declare("rs", "reassign", int)  # hand an accepted report to another grid worker (asks whom to)
STAFF_DEADLINE = declare("rs", "deadline", int)  # move the deadline (+1/+3/+7 days, or a typed day)

FOLLOWUP_OK = declare("rf", "ok", int)  # the reporter confirms the fix
FOLLOWUP_NO = declare("rf", "no", int)  # not fixed (asks for an optional photo)
