"""Actions that notices offer are declared once and each has a handler in the root router."""

from __future__ import annotations

import pytest

from bot.domain import actions
from bot.domain.actions import ActionRef
from bot.domain.notices import Choice
from bot.services import report_actions
from handlers import build_router

REFS = [v for v in vars(report_actions).values() if isinstance(v, ActionRef)]


def test_every_declared_action_has_a_route() -> None:
    router = build_router()
    router.check_refs()
    assert {r.key for r in REFS} <= set(actions.declared())
    for ref in REFS:
        route, parsed = router.decode(router.encode_ref(ref, 7))
        assert parsed.key == ref.key and parsed.args == (7,) and route.needs.value == "consent"


def test_report_action_refs_are_the_handlers_namespaces() -> None:
    assert sorted(r.key for r in REFS) == [
        "rf.no", "rf.ok", "rs.close", "rs.deadline", "rs.fix", "rs.reassign", "rs.reject", "rs.reopen", "rs.start",
        "rs.take"]  # fmt: skip
    assert all(r.arg_types == (int,) for r in REFS)


def test_a_declared_action_without_a_handler_stops_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(actions._DECLARED, "rs.gone", ActionRef("rs", "gone", (int,)))
    with pytest.raises(LookupError, match=r"rs\.gone"):
        build_router().check_refs()


def test_a_button_with_wrong_arguments_fails_where_it_is_made() -> None:
    with pytest.raises(TypeError):
        Choice("reports.btn.take", report_actions.STAFF_TAKE, ("1",))
    with pytest.raises(ValueError, match="declared twice"):
        actions.declare("rs", "take", str)
