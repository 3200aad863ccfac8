"""Telegram HTML: the pre-send check, its agreement with the emulator, and entities → HTML round trips."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiogram.types
import pytest
import telegram
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.translate import to_incoming
from bot.domain.telegram_html import (
    CAPTION_LIMIT,
    TEXT_LIMIT,
    EntityParseError,
    HtmlProblem,
    check_html,
    entities_to_html,
    escape,
    parse_html,
    plain_length,
    utf16_len,
)
from bot.sandbox import validate
from bot.sandbox.errors import ApiError
from bot.sandbox.params import Params

# --- check_html -----------------------------------------------------------------------------------------------------


def test_check_html_accepts_supported_markup() -> None:
    source = (
        '<b>加油</b> <i>i</i> <u>u</u> <s>s</s> <tg-spoiler>x</tg-spoiler> <span class="tg-spoiler">y</span> '
        '<a href="https://x.cn/?a=1&amp;b=2">链接</a> <code>c</code> <pre><code class="language-py">p</code></pre> '
        "<blockquote expandable>q</blockquote> &lt;3 &quot;"
    )
    assert check_html(source) is None


def test_check_html_unclosed_tag_is_refused() -> None:
    problem = check_html("第一条：<b>加油")
    assert problem == HtmlProblem("unclosed_tag", "<b> at character 5 is never closed", tag="b", position=5)


def test_check_html_start_tag_without_closing_bracket_is_refused() -> None:
    problem = check_html('看 <a href="https://x.cn"')
    assert problem is not None
    assert (problem.code, problem.tag, problem.position) == ("unclosed_tag", "a", 3)


def test_check_html_unsupported_tag_is_refused() -> None:
    problem = check_html("第一行<br>第二行")
    assert problem is not None
    assert (problem.code, problem.tag, problem.position) == ("unsupported_tag", "br", 4)
    assert "<br> at character 4" in problem.detail


def test_check_html_bare_less_than_is_refused() -> None:
    problem = check_html("1 < 2")
    assert problem is not None
    assert (problem.code, problem.tag, problem.position) == ("unsupported_tag", "", 3)
    assert "&lt;" in problem.detail


def test_check_html_unmatched_end_tag_is_refused() -> None:
    problem = check_html("<b>粗<i>斜</b></i>")
    assert problem is not None
    assert (problem.code, problem.tag, problem.position) == ("unmatched_end_tag", "b", 9)
    assert problem.detail == "</b> at character 9 does not match the open <i> at character 5"


def test_check_html_end_tag_without_start_is_refused() -> None:
    problem = check_html("好</b>")
    assert problem is not None
    assert (problem.code, problem.tag, problem.position) == ("unmatched_end_tag", "b", 2)


@pytest.mark.parametrize("source", ['<span class="red">x</span>', "<span>x</span>", '<a href="x>y</a>', "<b =1>x</b>"])
def test_check_html_bad_attribute_is_refused(source: str) -> None:
    problem = check_html(source)
    assert problem is not None
    assert (problem.code, problem.position) == ("bad_attribute", 1)


@pytest.mark.parametrize("source", ["A & B", "&nbsp;", "&#xD800;", "&#0;", "a&b;c", "<a>无链接</a>"])
def test_check_html_accepts_what_telegram_keeps_as_text(source: str) -> None:
    # Telegram keeps a bare or unknown "&..." as text, and an <a> without href is plain text: no refusal.
    assert check_html(source) is None


def test_check_html_empty_text_is_refused_but_empty_caption_is_not() -> None:
    problem = check_html("<b> </b>\n")
    assert problem is not None and problem.code == "empty"
    assert check_html("<b></b>", caption=True) is None


def test_check_html_text_over_4096_is_refused() -> None:
    assert check_html("字" * TEXT_LIMIT) is None
    problem = check_html("字" * (TEXT_LIMIT + 1))
    assert problem is not None and problem.code == "too_long"
    assert "4097" in problem.detail and "4096" in problem.detail


def test_check_html_length_is_counted_after_parsing() -> None:
    assert check_html(f"<b>{'a' * TEXT_LIMIT}</b>") is None
    assert check_html("&amp;" * TEXT_LIMIT) is None


def test_check_html_length_is_counted_in_utf16_units() -> None:
    emoji = "😀" * (TEXT_LIMIT // 2 + 1)  # 2049 characters, 4098 UTF-16 code units
    problem = check_html(emoji)
    assert problem is not None and problem.code == "too_long"


def test_check_html_caption_over_1024_is_refused() -> None:
    source = "<i>" + "图" * (CAPTION_LIMIT + 1) + "</i>"
    problem = check_html(source, caption=True)
    assert problem is not None and problem.code == "too_long"
    assert check_html("图" * CAPTION_LIMIT, caption=True) is None
    assert check_html(source) is None  # fine as a message text


def test_plain_length_counts_utf16_after_parsing() -> None:
    assert plain_length("<b>😀</b> &lt;字") == 5  # the emoji counts twice
    with pytest.raises(EntityParseError):
        plain_length("<b>")


def test_parse_errors_are_structured_and_keep_telegrams_wording() -> None:
    with pytest.raises(EntityParseError) as caught:
        parse_html("é<b>x</i>")
    error = caught.value
    assert (error.code, error.tag, error.index) == ("unmatched_end_tag", "i", 5)
    assert str(error) == 'Unmatched end tag at byte offset 6, expected "</b>", found "</i>"'  # bytes, as Telegram


_SOURCES = [
    "<b>ok</b>",
    "<b>x",
    "<br>",
    "1 < 2",
    "x</b>",
    "<b>x</i>",
    "<span>x</span>",
    '<a href="x>y</a>',
    "<b",
    "</b",
    "A & B",
    " ",
    "<b> </b>",
    "字" * 4097,
    "😀" * 2049,
    "a" * 1025,
    "<b>" + "a" * 4096 + "</b>",
]


def _emulator_accepts(source: str, *, caption: bool) -> bool:
    field = "caption" if caption else "text"
    try:
        if caption:
            validate.caption(Params({field: source, "parse_mode": "HTML"}))
        else:
            validate.message_text(Params({field: source, "parse_mode": "HTML"}))
    except ApiError:
        return False
    return True


@pytest.mark.parametrize("caption", [False, True])
@pytest.mark.parametrize("source", _SOURCES)
def test_check_html_agrees_with_the_emulator(source: str, caption: bool) -> None:
    assert (check_html(source, caption=caption) is None) == _emulator_accepts(source, caption=caption)


# --- entities_to_html -----------------------------------------------------------------------------------------------


def _sorted(entities: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(e, sort_keys=True) for e in entities)


def test_entities_to_html_escapes_text() -> None:
    assert entities_to_html("a<b> & c", []) == "a&lt;b&gt; &amp; c"
    assert escape("&amp;") == "&amp;amp;"


def test_entities_to_html_uses_utf16_offsets() -> None:
    text = "😀加油 好"  # the emoji takes two UTF-16 code units
    entities = [{"type": "bold", "offset": 2, "length": 2}, {"type": "italic", "offset": 0, "length": 5}]
    assert entities_to_html(text, entities) == "<i>😀<b>加油</b> </i>好"


def test_entities_to_html_renders_every_formatting_kind() -> None:
    text = "粗 斜 下 删 隐 码 块 链 人 引 折"
    kinds: list[dict[str, Any]] = [
        {"type": "bold"},
        {"type": "italic"},
        {"type": "underline"},
        {"type": "strikethrough"},
        {"type": "spoiler"},
        {"type": "code"},
        {"type": "pre", "language": "python"},
        {"type": "text_link", "url": 'https://x.cn/?a=1&b="2"'},
        {"type": "text_mention", "user": {"id": 42, "is_bot": False, "first_name": "张三"}},
        {"type": "blockquote"},
        {"type": "expandable_blockquote"},
    ]
    entities = [{**kind, "offset": 2 * k, "length": 1} for k, kind in enumerate(kinds)]
    html = entities_to_html(text, entities)
    assert html == (
        "<b>粗</b> <i>斜</i> <u>下</u> <s>删</s> <tg-spoiler>隐</tg-spoiler> <code>码</code> "
        '<pre><code class="language-python">块</code></pre> <a href="https://x.cn/?a=1&amp;b=&quot;2&quot;">链</a> '
        '<a href="tg://user?id=42">人</a> <blockquote>引</blockquote> <blockquote expandable>折</blockquote>'
    )
    parsed_text, parsed = parse_html(html)
    assert parsed_text == text
    expected = [{k: v for k, v in e.items() if k != "user"} for e in entities]
    expected[8] = {
        "type": "text_link",
        "url": "tg://user?id=42",
        "offset": 16,
        "length": 1,
    }  # as the emulator parses it
    assert _sorted(parsed) == _sorted(expected)


def test_entities_to_html_ignores_entities_that_need_no_markup() -> None:
    text = "/start @sicheng #四城 https://x.cn"
    entities = [
        {"type": "bot_command", "offset": 0, "length": 6},
        {"type": "mention", "offset": 7, "length": 8},
        {"type": "hashtag", "offset": 16, "length": 3},
        {"type": "url", "offset": 20, "length": 12},
        {"type": "text_link", "offset": 0, "length": 6, "url": ""},
    ]
    assert entities_to_html(text, entities) == text


def test_entities_to_html_splits_crossing_entities() -> None:
    html = entities_to_html(
        "abcdefgh", [{"type": "bold", "offset": 0, "length": 5}, {"type": "italic", "offset": 3, "length": 5}]
    )
    assert html == "<b>abc<i>de</i></b><i>fgh</i>"


def test_entities_to_html_snaps_offsets_inside_a_surrogate_pair() -> None:
    html = entities_to_html("a😀b", [{"type": "bold", "offset": 2, "length": 1}])
    assert html == "a<b>😀</b>b"


# Text pieces with CJK, emoji (two UTF-16 units), characters that need escaping and whitespace.
_chars = st.sampled_from([*"ab 字四城\n&<>\"'😀👍🏽", "&amp;", "\u200d"])
_text = st.lists(_chars, max_size=6).map("".join)
_leaf = _text.map(escape)
_language = st.text(alphabet='py3+-"&<', min_size=1, max_size=4)


def _attr(value: str) -> str:
    return escape(value).replace('"', "&quot;")


_url = st.sampled_from(["https://x.cn", "https://x.cn/?a=1&b=2", 'http://"q"', "tg://user?id=7", "https://例子.cn/<>"])


def _wrap(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    simple = st.sampled_from(["b", "strong", "i", "em", "u", "ins", "s", "del", "tg-spoiler", "code", "pre"])
    return st.one_of(
        st.tuples(simple, inner).map(lambda t: f"<{t[0]}>{t[1]}</{t[0]}>"),
        st.tuples(_language, inner).map(lambda t: f'<pre><code class="language-{_attr(t[0])}">{t[1]}</code></pre>'),
        st.tuples(_url, inner).map(lambda t: f'<a href="{_attr(t[0])}">{t[1]}</a>'),
        st.tuples(st.booleans(), inner).map(
            lambda t: f"<blockquote{' expandable' if t[0] else ''}>{t[1]}</blockquote>"
        ),
        inner.map(lambda s: f'<span class="tg-spoiler">{s}</span>'),
        inner.map(lambda s: f'<tg-emoji emoji-id="5368324170671202286">{s}</tg-emoji>'),
    )


_html = st.recursive(_leaf, lambda inner: st.one_of(_wrap(inner), st.lists(inner, min_size=2, max_size=4).map("".join)))


@given(_html)
def test_entities_to_html_round_trips(source: str) -> None:
    text, entities = parse_html(source)
    again_text, again = parse_html(entities_to_html(text, entities))
    assert again_text == text
    assert _sorted(again) == _sorted(entities)


_FORMATS: list[dict[str, Any]] = [
    {"type": "bold"},
    {"type": "italic"},
    {"type": "underline"},
    {"type": "strikethrough"},
    {"type": "spoiler"},
    {"type": "code"},
    {"type": "pre"},
    {"type": "pre", "language": "go"},
    {"type": "text_link", "url": "https://x.cn/?a&b"},
    {"type": "blockquote"},
    {"type": "expandable_blockquote"},
]


@st.composite
def _message(draw: st.DrawFn) -> tuple[str, list[dict[str, Any]]]:
    """Any text with any formatting entities, overlapping or not, on character boundaries."""
    text = draw(st.lists(_chars.filter(lambda c: c != "&amp;"), max_size=12).map("".join))
    entities = []
    for _ in range(draw(st.integers(0, 5))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, len(text)))
        offset, length = utf16_len(text[:start]), utf16_len(text[start:end])
        entities.append({**draw(st.sampled_from(_FORMATS)), "offset": offset, "length": length})
    return text, entities


def _coverage(text: str, entities: list[dict[str, Any]]) -> list[Counter[str]]:
    """Per UTF-16 code unit, which formats apply (and how many times)."""
    units: list[Counter[str]] = [Counter() for _ in range(utf16_len(text))]
    for e in entities:
        key = json.dumps({k: v for k, v in e.items() if k not in ("offset", "length")}, sort_keys=True)
        for unit in range(e["offset"], e["offset"] + e["length"]):
            units[unit][key] += 1
    return units


@given(_message())
def test_entities_to_html_keeps_the_formatting_of_crossing_entities(message: tuple[str, list[dict[str, Any]]]) -> None:
    text, entities = message
    again_text, again = parse_html(entities_to_html(text, entities))
    assert again_text == text
    assert _coverage(again_text, again) == _coverage(text, entities)


# --- the translator carries the formatting ------------------------------------------------------------------------


def _update(**message: Any) -> dict[str, Any]:
    return {
        "update_id": 1,
        "message": {
            "message_id": 5,
            "date": 1700000000,
            "chat": {"id": 7, "type": "private"},
            "from": {"id": 7, "is_bot": False, "first_name": "居民"},
            **message,
        },
    }


def test_incoming_carries_text_as_html() -> None:
    update = _update(
        text="😀通知 <全体>",
        entities=[
            {"type": "bold", "offset": 2, "length": 2},
            {"type": "text_mention", "offset": 5, "length": 4, "user": {"id": 9, "is_bot": False, "first_name": "B"}},
        ],
    )
    incoming = to_incoming(update)
    assert incoming is not None
    assert incoming.text == "😀通知 <全体>"
    assert incoming.html == '😀<b>通知</b> <a href="tg://user?id=9">&lt;全体&gt;</a>'


def test_incoming_carries_caption_as_html() -> None:
    update = _update(
        photo=[{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
        caption="看这里 a&b",
        caption_entities=[{"type": "italic", "offset": 0, "length": 3}],
    )
    incoming = to_incoming(update)
    assert incoming is not None
    assert (incoming.text, incoming.html) == ("看这里 a&b", "<i>看这里</i> a&amp;b")


def test_incoming_without_text_has_no_html() -> None:
    incoming = to_incoming(_update(location={"latitude": 31.2, "longitude": 121.5}))
    assert incoming is not None and incoming.html is None


def test_both_libraries_give_identical_incoming_for_formatted_text() -> None:
    update = _update(
        text="/notice 😀 加油 code",
        entities=[
            {"type": "bot_command", "offset": 0, "length": 7},
            {"type": "bold", "offset": 8, "length": 5},
            {"type": "italic", "offset": 11, "length": 2},
            {"type": "pre", "offset": 14, "length": 4, "language": "py"},
            {"type": "text_mention", "offset": 8, "length": 2, "user": {"id": 9, "is_bot": False, "first_name": "B"}},
        ],
    )
    via_aiogram = aiogram.types.Update.model_validate(update).model_dump(mode="json", exclude_none=True, by_alias=True)
    via_ptb = telegram.Update.de_json(update, None).to_dict()
    assert via_ptb is not None
    from_aiogram, from_ptb = to_incoming(via_aiogram), to_incoming(via_ptb)
    assert from_aiogram == from_ptb
    assert from_aiogram is not None and from_aiogram.html is not None
    assert parse_html(from_aiogram.html)[0] == update["message"]["text"]
