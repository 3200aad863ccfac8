"""Input checks with Telegram's exact error texts: text and captions, parse modes, keyboards, polls."""

from __future__ import annotations

from typing import Any

from bot.sandbox.entities import EntityParseError, parse_html, utf16_len, with_commands
from bot.sandbox.errors import bad_request
from bot.sandbox.params import Params

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64
MAX_QUESTION = 300
MAX_OPTION = 100
MIN_OPTIONS, MAX_OPTIONS = 2, 12
MAX_EXPLANATION = 200
_BUTTON_ACTIONS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)
Entities = list[dict[str, Any]]


def formatted(p: Params, field: str, mode_field: str, entities_field: str) -> tuple[str | None, Entities]:
    """Apply parse_mode (or explicit entities) to a text field; None when the field is absent."""
    source = p.get_str(field)
    if source is None:
        return None, []
    explicit = p.get_json(entities_field)
    if isinstance(explicit, list):
        return source, [e for e in explicit if isinstance(e, dict)]
    mode = (p.get_str(mode_field) or "").strip()
    if mode.lower() == "html":
        try:
            text, entities = parse_html(source)
        except EntityParseError as exc:
            raise bad_request(f"can't parse entities: {exc}") from None
        return text, with_commands(text, entities)
    if mode.lower() in ("", "markdown", "markdownv2"):
        # Markdown modes are passed through unparsed; the project sends HTML.
        return source, with_commands(source, [])
    raise bad_request(f"unsupported parse_mode {mode!r}")


def message_text(p: Params) -> tuple[str, Entities]:
    """The text of sendMessage/editMessageText: 1..4096 characters after entity parsing."""
    text, entities = formatted(p, "text", "parse_mode", "entities")
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    if utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


def caption(p: Params) -> tuple[str | None, Entities]:
    """An optional caption: at most 1024 characters after entity parsing."""
    text, entities = formatted(p, "caption", "parse_mode", "caption_entities")
    if text is not None and utf16_len(text) > MAX_CAPTION:
        raise bad_request("message caption is too long")
    return (text or None), entities


def reply_markup(p: Params) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Split reply_markup into (inline keyboard, other markup); both validated."""
    markup = p.get_json("reply_markup", "reply keyboard markup")
    if markup is None:
        return None, None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" in markup:
        return inline_keyboard(markup), None
    if "keyboard" in markup:
        rows = _rows(markup["keyboard"], "keyboard")
        keyboard = [[b if isinstance(b, dict) else {"text": str(b)} for b in row] for row in rows]
        return None, {**markup, "keyboard": keyboard}
    if markup.get("remove_keyboard") or markup.get("force_reply"):
        return None, markup
    raise bad_request("can't parse reply keyboard markup JSON object")


def inline_keyboard(markup: dict[str, Any]) -> dict[str, Any]:
    """Validate an InlineKeyboardMarkup; drops null fields so equal keyboards compare equal."""
    rows = _rows(markup["inline_keyboard"], "inline_keyboard")
    clean = [[_inline_button(button) for button in row] for row in rows]
    return {"inline_keyboard": clean}


def _rows(value: Any, name: str) -> list[list[Any]]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise bad_request(f'field "{name}" must be an Array of Arrays')
    return value


def _inline_button(button: Any) -> dict[str, Any]:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise bad_request('can\'t parse inline keyboard button: Field "text" must be of type String')
    clean = {key: value for key, value in button.items() if value is not None}
    actions = [key for key in _BUTTON_ACTIONS if key in clean]
    if not actions:
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
    if "callback_data" in clean:
        data = clean["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA:
            raise bad_request("BUTTON_DATA_INVALID")
    if "url" in clean and not str(clean["url"]).startswith(("http://", "https://", "tg://")):
        raise bad_request("BUTTON_URL_INVALID")
    return clean


def poll_options(p: Params) -> list[str]:
    """sendPoll options: 2..12, each 1..100 characters; strings or InputPollOption objects."""
    raw = p.get_json("options")
    if not isinstance(raw, list):
        raise bad_request("poll options must be an Array")
    texts = [item.get("text") if isinstance(item, dict) else item for item in raw]
    if len(texts) < MIN_OPTIONS:
        raise bad_request("poll must have at least 2 option")
    if len(texts) > MAX_OPTIONS:
        raise bad_request("poll can't have more than 12 options")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise bad_request("poll options must be non-empty")
        if utf16_len(text) > MAX_OPTION:
            raise bad_request("poll options length must not exceed 100")
    return [str(text) for text in texts]


def poll_question(p: Params) -> str:
    """sendPoll question: 1..300 characters."""
    question = p.get_str("question")
    if question is None or not question.strip():
        raise bad_request("poll question must be non-empty")
    if utf16_len(question) > MAX_QUESTION:
        raise bad_request("poll question length must not exceed 300")
    return question


def correct_options(p: Params, n_options: int) -> list[int]:
    """Quiz answers from correct_option_ids (Bot API 9.6) or the legacy correct_option_id."""
    raw = p.get_json("correct_option_ids")
    if raw is None and p.has("correct_option_id"):
        raw = [p.get_int("correct_option_id")]
    if raw is None:
        raise bad_request("correct_option_ids must be specified for quiz polls")
    if not isinstance(raw, list) or not raw:
        raise bad_request("wrong correct_option_ids specified")
    ids = [int(i) for i in raw if isinstance(i, int | str) and str(i).lstrip("-").isdigit()]
    if len(ids) != len(raw) or len(set(ids)) != len(ids) or any(not 0 <= i < n_options for i in ids):
        raise bad_request("wrong correct_option_ids specified")
    return sorted(ids)


def explanation(p: Params) -> str | None:
    """Quiz explanation: at most 200 characters after entity parsing."""
    text, _ = formatted(p, "explanation", "explanation_parse_mode", "explanation_entities")
    if text is not None and utf16_len(text) > MAX_EXPLANATION:
        raise bad_request("explanation is too long")
    return text or None
