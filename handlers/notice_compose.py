"""/notice: an organiser composes a campaign notice — text, photo, track, buttons, audience, preview, send or schedule."""

from __future__ import annotations

from bot.conversation.router import Router

router = Router("nc")
