"""Cutting text to Slack's limits: between graphemes, never inside an escape or a token."""

from __future__ import annotations

import pytest

from monitor.notify.fit import clip_mrkdwn, clip_plain, width

LINK = "<https://news.example/a?b=1&c=2|the label>"
DATE = "<!date^1714566600^{date_short_pretty}|2024-05-01 12:30 UTC>"


@pytest.mark.parametrize("token", [LINK, DATE, "&amp;", "&lt;", "&gt;", "👩\u200d👩\u200d👧"])
def test_a_token_that_does_not_fit_is_left_out_whole(token: str) -> None:
    for lead in range(40, 80):  # every cut point across the token
        text = "x" * lead + token + "y" * 10
        clipped = clip_mrkdwn(text, 60)
        assert width(clipped) <= 60
        kept = clipped.removesuffix("…")
        assert kept == text[: len(kept)]
        assert token in kept or kept == "x" * min(lead, len(kept)), (lead, clipped)


def test_text_that_fits_is_unchanged_and_a_cut_prefers_a_space_near_the_end() -> None:
    assert clip_mrkdwn(LINK, len(LINK)) == LINK
    assert clip_plain("alpha beta gamma delta", 20) == "alpha beta gamma…"
    assert clip_plain("a" + "b" * 60, 20) == "a" + "b" * 18 + "…"  # no space: cut at 19


def test_emoji_count_as_two_utf16_units() -> None:
    assert width("🚨") == 2
    assert clip_plain("🚨" * 10, 7) == "🚨" * 3 + "…"
