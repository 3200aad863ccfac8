"""Thin conversation handlers, one module per feature: parse → one service call → Reply."""

from bot.conversation.router import Router


def build_router() -> Router:
    """The root router with every feature's routes."""
    from handlers import groups, menu, onboarding, privacy, settings

    return Router("root").include(onboarding.router, menu.router, settings.router, privacy.router, groups.router)
