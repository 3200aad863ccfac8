"""Thin conversation handlers, one module per feature: parse → one service call → Reply."""

from bot.conversation.router import Router

# Order of Telegram's command menu (setMyCommands): what residents use most comes first.
MENU_ORDER = (
    "start",
    "menu",
    "quiz",
    "report",
    "myreports",
    "points",
    "myredemptions",
    "rank",
    "volunteer",
    "myhours",
    "proposals",
    "propose",
    "notices",
    "survey",
    "settings",
    "mydata",
    "deleteme",
    "help",
    "cancel",
)


def build_router() -> Router:
    """The root router with every feature's routes."""
    from handlers import (
        dashboard,
        groups,
        menu,
        notice_board,
        notice_compose,
        notices,
        onboarding,
        points,
        points_admin,
        privacy,
        proposals,
        quiz,
        quiz_group,
        quiz_stats,
        report_followup,
        report_staff,
        reports,
        settings,
        surveys,
        volunteer_desk,
        volunteers,
    )

    root = Router("root").include(
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
        notices.router,
        notice_compose.router,
        notice_board.router,
        volunteers.router,
        volunteer_desk.router,
        dashboard.router,
        proposals.router,
        surveys.router,
    )
    root.menu_commands.sort(key=lambda name: MENU_ORDER.index(name) if name in MENU_ORDER else len(MENU_ORDER))
    return root
