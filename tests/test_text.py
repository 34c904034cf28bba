"""Feed text to plain text: table tests for markup, entities, unsafe characters and caps."""

from __future__ import annotations

import pytest

from monitor.feeds.text import clean_text, html_to_text, language_tag, truncate


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        ("Example <b>Atom</b>", "Example Atom"),
        ("<p>Example description</p>", "Example description"),
        ("<p>one</p><p>two</p>", "one two"),  # blocks separate words
        ("line<br>break", "line break"),
        ("1930ft<sup>2</sup> and <i>it</i>alic", "1930ft2 and italic"),  # inline ones do not
        ("&#x0024;4300 &amp; &quot;more&quot;", '$4300 & "more"'),
        ("&#X61; &#8217; &hellip; &nbsp;x", "a \u2019 \u2026 x"),
        ("Q&A session", "Q&A session"),  # a bare ampersand is text
        ("testing &doesnotexist; entity", "testing &doesnotexist; entity"),
        ("1 &lt; 2", "1 < 2"),
        ("safe<script>location.href='x'</script> description", "safe description"),
        ("<style>p { color: red }</style>shown", "shown"),
        ("<!-- <script> --> after a comment", "after a comment"),
        ("unclosed <script>everything after is code", "unclosed"),
        ("<div\n>broken <a href='x'>markup", "broken markup"),
        ("  lots \n\n\t of   space  ", "lots of space"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, expected: str) -> None:
    assert html_to_text(markup) == expected


def test_html_to_text_keeps_escaped_brackets_as_text() -> None:
    # Escaped once, a tag is text; html_to_text decodes once and never re-parses.
    assert html_to_text("History of the &lt;blink&gt; tag") == "History of the <blink> tag"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("History of the <blink> tag", "History of the <blink> tag"),  # plain text stays
        ("nul\x00 and bell\x07 gone", "nul and bell gone"),
        ("c1\x85 next line and \x9dcontrol", "c1 next line and control"),
        ("evil\u202eTXT.exe and \u2066isolate\u2069", "evilTXT.exe and isolate"),
        ("\ufeffbom", "bom"),
        ("lone \ud800 surrogate", "lone surrogate"),
        ("tab\tnew\nline\r\ncr", "tab new line cr"),
        ("no-break\u00a0space", "no-break space"),
        ("emoji 1\ufe0f\u20e3 and \u200djoiner kept", "emoji 1\ufe0f\u20e3 and \u200djoiner kept"),
    ],
)
def test_clean_text(text: str, expected: str) -> None:
    assert clean_text(text) == expected


def test_html_to_text_removes_controls_that_entities_produce() -> None:
    assert html_to_text("a&#0;b&#x202E;c&#7;d") == "a\ufffdbcd"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("exactly ten", 11, "exactly ten"),
        ("hello world foo bar", 12, "hello world…"),
        ("abcdefghijklmnop", 8, "abcdefg…"),  # one long word: cut inside it
        ("a bcdefghijklmnop", 8, "a bcdef…"),  # a space too early to cut at
    ],
)
def test_truncate(text: str, limit: int, expected: str) -> None:
    result = truncate(text, limit)
    assert result == expected
    assert len(result) <= limit


def test_truncate_refuses_a_zero_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        truncate("text", 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("en-US", "en"),
        ("en-Us", "en"),
        ("EN", "en"),
        ("zh_cn", "zh"),
        (" pt-PT ", "pt"),
        ("", None),
        (None, None),
        ("x", None),
        ("e1", None),
        ("<script>", None),
    ],
)
def test_language_tag(value: str | None, expected: str | None) -> None:
    assert language_tag(value) == expected
