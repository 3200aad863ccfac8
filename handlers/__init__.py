"""Thin conversation handlers, one module per feature: parse → one service call → Reply."""

from bot.conversation.router import Router


def build_router() -> Router:
    """The root router with every feature's routes."""
    from handlers import (
        groups,
        menu,
        onboarding,
        points,
        points_admin,
        privacy,
        quiz,
        quiz_group,
        quiz_stats,
        report_followup,
        report_staff,
        reports,
        settings,
    )

    return Router("root").include(
        onboarding.router,
        menu.router,
        settings.router,
        privacy.router,
        groups.router,
        points.router,
        points_admin.router,
        quiz.router,
        quiz_group.router,
        quiz_stats.router,
        reports.router,
        report_followup.router,
        report_staff.router,
    )
