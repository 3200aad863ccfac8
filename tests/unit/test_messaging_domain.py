"""Why a message could not be delivered, as organisers read it in a notice's report."""

from __future__ import annotations

import pytest

from bot.domain.messaging import UNREACHABLE, unreachable_reason


@pytest.mark.parametrize(
    ("description", "reason"),
    [
        ("Forbidden: bot was blocked by the user", "unreachable: blocked"),
        ("Forbidden: bot can't initiate conversation with a user", "unreachable: never started"),
        ("Forbidden: user is deactivated", "unreachable: deactivated"),
        ("Forbidden: bot was kicked from the supergroup chat", "unreachable: removed from group"),
        ("Forbidden: bot is not a member of the channel chat", "unreachable: removed from group"),
        ("Forbidden: something new", UNREACHABLE),
    ],
)
def test_unreachable_reason_names_telegrams_cause(description: str, reason: str) -> None:
    assert unreachable_reason(description) == reason
