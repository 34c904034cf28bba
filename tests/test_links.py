"""Canonical links: table tests for tracking parameters, normalisation and refused schemes."""

from __future__ import annotations

import pytest

from monitor.feeds.links import absolute_link, canonical_link


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Tracking parameters seen in the fixture feeds (BBC, DW, Al Jazeera, Rest of World).
        (
            "https://www.bbc.com/news/articles/cp81l0e1eg5o?at_medium=RSS&at_campaign=rss",
            "https://www.bbc.com/news/articles/cp81l0e1eg5o",
        ),
        (
            "https://www.dw.com/en/a-75995188?maca=en-rss-en-all-1573-rdf",
            "https://www.dw.com/en/a-75995188",
        ),
        ("https://www.aljazeera.com/news/x?traffic_source=rss", "https://www.aljazeera.com/news/x"),
        (
            "https://restofworld.org/2026/x/?utm_source=rss&utm_medium=rss&utm_campaign=y",
            "https://restofworld.org/2026/x/",
        ),
        ("https://e.com/a?UTM_Source=x&Fbclid=1", "https://e.com/a"),  # names are case-blind
        (
            "https://e.com/a?gclid=1&dclid=2&msclkid=3&mc_cid=4&mc_eid=5&igshid=6&yclid=7",
            "https://e.com/a",
        ),
        (
            "https://e.com/a?_hsenc=1&_hsmi=2&mkt_tok=3&ocid=4&cmpid=5&smid=6&ref_src=7",
            "https://e.com/a",
        ),
        # Other parameters keep their order and spelling.
        ("https://e.com/a?b=2&utm_source=x&a=1&c", "https://e.com/a?b=2&a=1&c"),
        ("http://example/?a=1&b=2&c", "http://example/?a=1&b=2&c"),
        ("https://e.com/a?q=a b", "https://e.com/a?q=a%20b"),
        ("https://e.com/a?&&x=1&", "https://e.com/a?x=1"),
        # Case, ports, credentials and fragments.
        ("HTTP://Example.COM:80/Path", "http://example.com/Path"),
        ("https://example.com:443/", "https://example.com/"),
        ("https://example.com:8443/x", "https://example.com:8443/x"),
        ("https://user:secret@example.com/x", "https://example.com/x"),
        ("https://www.ndtv.com/x-11053#publisher=newsstand", "https://www.ndtv.com/x-11053"),
        ("https://app.example.com/#!/item/3", "https://app.example.com/#!/item/3"),
        ("https://app.example.com/#/item/3", "https://app.example.com/#/item/3"),
        ("https://example.com", "https://example.com/"),
        ("http://[::1]:80/x", "http://[::1]/x"),
        # Percent-encoding: existing escapes kept exactly, raw non-ASCII encoded.
        (
            "https://japantoday.com/category/world/x%27s-y",
            "https://japantoday.com/category/world/x%27s-y",
        ),
        ("http://any.test/\u00c0", "http://any.test/%C3%80"),
        ("  https://e.com/padded  ", "https://e.com/padded"),
    ],
)
def test_canonical_link(url: str, expected: str) -> None:
    assert canonical_link(url) == expected
    assert canonical_link(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://example.com/file",
        "mailto:someone@example.com",
        "/relative/path",
        "",
        "http://example.c[o.test/",
        "http://",
        "http://bad<host>/",
        "http://example.com:99999/",
    ],
)
def test_canonical_link_refuses_what_is_not_an_http_url(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        canonical_link(url)


@pytest.mark.parametrize(
    ("href", "base", "expected"),
    [
        ("/news/1?utm_source=x", "https://example.org/feed.xml", "https://example.org/news/1"),
        (
            "entry/test.html",
            "https://example.org/feed/",
            "https://example.org/feed/entry/test.html",
        ),
        ("//cdn.example.net/a", "https://example.org/", "https://cdn.example.net/a"),
        ("https://other.example/x", "https://example.org/", "https://other.example/x"),
        ("javascript:alert(1)", "https://example.org/", None),
        (" data:text/html,x ", "https://example.org/", None),
        ("", "https://example.org/", None),
        (None, "https://example.org/", None),
    ],
)
def test_absolute_link(href: str | None, base: str, expected: str | None) -> None:
    assert absolute_link(href, base) == expected
