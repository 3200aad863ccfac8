"""The webhook's secret token: derived from the bot token when none is configured, in Telegram's allowed charset."""

from __future__ import annotations

import re

import pytest

from bot.channels.translate import to_incoming
from bot.channels.webhook import WebhookIntake, derive_secret
from bot.config import HANDLED_UPDATES, WebhookSettings

TOKEN = "123456789:AAH-example_token-for-tests-only-0123456"
TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def test_derive_secret_is_stable_for_one_token() -> None:
    # Several intake processes of one token, and every restart, must register and expect the same secret.
    assert derive_secret(TOKEN) == derive_secret(TOKEN)


def test_derive_secret_uses_only_telegram_allowed_characters() -> None:
    for token in (TOKEN, "1:a", "987654321:" + "Z" * 128, "42:-_-_-_"):
        assert TELEGRAM_SECRET.match(derive_secret(token))


def test_derive_secret_does_not_contain_the_token() -> None:
    secret = derive_secret(TOKEN)
    assert secret != TOKEN
    assert TOKEN.split(":")[1] not in secret and TOKEN.split(":")[0] not in secret


def test_derive_secret_differs_between_tokens() -> None:
    assert derive_secret(TOKEN) != derive_secret(TOKEN[:-1] + "7")


def test_configured_secret_is_used_instead_of_the_derived_one() -> None:
    settings = WebhookSettings(url="https://bot.example.org/tg", secret="my-own_Secret1")  # type: ignore[arg-type]
    intake = WebhookIntake.from_settings(settings, TOKEN)
    assert intake.secret == "my-own_Secret1"
    assert "my-own_Secret1" not in repr(intake)


@pytest.mark.parametrize("unset", [None, ""])
def test_unset_secret_is_derived_from_the_token(unset: str | None) -> None:
    settings = WebhookSettings(url="https://bot.example.org/tg", secret=unset)  # type: ignore[arg-type]
    intake = WebhookIntake.from_settings(settings, TOKEN)
    assert intake.secret == derive_secret(TOKEN)
    assert intake.secret not in repr(intake)


@pytest.mark.parametrize("bad", ["has space", "ümlaut", "a" * 257, "semi;colon"])
def test_configured_secret_outside_telegram_charset_is_refused_without_echo(bad: str) -> None:
    settings = WebhookSettings(url="https://bot.example.org/tg", secret=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="A-Z, a-z, 0-9") as refused:
        WebhookIntake.from_settings(settings, TOKEN)
    assert bad not in str(refused.value)  # the error does not echo the secret
    assert bad not in repr(settings)


def test_command_line_overrides_replace_the_settings() -> None:
    settings = WebhookSettings(url="https://a.example.org/x")
    intake = WebhookIntake.from_settings(
        settings, TOKEN, url="https://b.example.org/y", host="0.0.0.0", port=9000, path="/hook"
    )
    assert (intake.url, intake.host, intake.port, intake.path) == ("https://b.example.org/y", "0.0.0.0", 9000, "/hook")


def test_default_allowed_updates_are_the_kinds_the_bot_handles() -> None:
    user = {"id": 7, "is_bot": False, "first_name": "A"}
    chat = {"id": 7, "type": "private"}
    samples = {
        "message": {"message_id": 1, "date": 1, "chat": chat, "from": user, "text": "hi"},
        "callback_query": {"id": "q", "from": user, "chat_instance": "1", "data": "x"},
        "poll_answer": {"poll_id": "p", "user": user, "option_ids": [0]},
        "edited_message": {"message_id": 1, "date": 1, "edit_date": 2, "chat": chat, "from": user, "text": "x"},
        "my_chat_member": {"chat": chat, "from": user, "date": 1},
        "poll": {"id": "p", "question": "q", "options": []},
    }
    handled = {kind for kind, body in samples.items() if to_incoming({"update_id": 1, kind: body}) is not None}
    assert set(WebhookSettings().allowed_updates) == handled == set(HANDLED_UPDATES)
