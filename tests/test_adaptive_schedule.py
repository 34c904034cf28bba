"""Adaptive polling (issue #11): the pure decisions of monitor.schedule, table by table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.schedule import (
    PACE_SAMPLE,
    PollBounds,
    freshness,
    poll_interval,
    publish_gap,
    refresh_hint,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
BOUNDS = PollBounds(minimum=120.0, maximum=4 * 3600.0)
DEFAULT = 300.0


def every(minutes: float, count: int) -> list[datetime]:
    return [NOW - timedelta(minutes=minutes * n) for n in range(count)]


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        ([], None),
        (every(10, 2), None),  # one gap says nothing
        (every(10, 3), 600.0),
        (every(60, 10), 3600.0),
        # One late item among regular ones is noise to the median.
        ([*every(30, 9), NOW - timedelta(days=30)], 1800.0),
        # Items sharing one date (a feed stamped at publish time) are one date.
        ([NOW, NOW, NOW, *every(60, 4)], 3600.0),
        # Only the newest PACE_SAMPLE gaps count: the feed got busier lately.
        ([*every(5, PACE_SAMPLE + 1), *(NOW - timedelta(days=d) for d in range(1, 40))], 300.0),
    ],
)
def test_publish_gap_is_the_median_of_the_newest_gaps(published, expected):
    assert publish_gap(published) == expected


@pytest.mark.parametrize(
    ("ttl", "period", "frequency", "expected"),
    [
        (None, None, None, None),
        ("60", None, None, 3600.0),
        (" 15 ", None, None, 900.0),
        ("soon", None, None, None),
        ("-5", None, None, None),
        (None, "hourly", None, 3600.0),
        (None, "daily", "4", 6 * 3600.0),
        (None, "Weekly", "0", 7 * 86400.0),  # a frequency of 0 is read as once
        (None, "fortnightly", "2", None),
        ("30", "hourly", "1", 3600.0),  # the longer of the two
    ],
)
def test_refresh_hint_reads_ttl_and_the_syndication_module(ttl, period, frequency, expected):
    assert refresh_hint(ttl, period, frequency) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"cache-control": "public, max-age=1800"}, 1800.0),
        ({"cache-control": 'max-age="600"'}, 600.0),
        ({"cache-control": "s-maxage=900"}, None),  # for shared caches, not for us
        ({"cache-control": "max-age=0"}, 0.0),
        ({"cache-control": "no-cache, max-age=3600"}, 0.0),
        ({"cache-control": "max-age=60", "expires": "Thu, 26 Nov 2026 14:00:00 GMT"}, 60.0),
        ({"expires": "Thu, 26 Nov 2026 14:00:00 GMT"}, 7200.0),
        ({"expires": "Thu, 26 Nov 2026 11:00:00 GMT"}, 0.0),  # in the past
        ({"expires": "0"}, 0.0),  # RFC 9111: an invalid date means already expired
    ],
)
def test_freshness_reads_max_age_then_expires(headers, expected):
    assert freshness(NOW, headers) == expected


@pytest.mark.parametrize(
    ("configured", "gap", "hints", "expected"),
    [
        (None, None, (), DEFAULT),  # nothing known yet: MONITOR_POLL_INTERVAL
        (None, 3600.0, (), 1800.0),  # half the publishing gap
        (None, 60.0, (), 120.0),  # a busy feed: no sooner than the minimum
        (None, 30 * 86400.0, (), 4 * 3600.0),  # a quiet feed: still looked at every 4 hours
        (None, 600.0, (0.0,), 300.0),  # max-age=0 is no reason to come back sooner
        (None, 600.0, (None, 7200.0), 7200.0),  # the publisher asks for two hours
        (None, 600.0, (86400.0 * 7,), 4 * 3600.0),  # a week's max-age is bounded too
        (900.0, None, (), 900.0),  # the feed's own interval
        (900.0, 600.0, (), 900.0),  # never below the operator's interval
        (900.0, 7200.0, (), 3600.0),  # a feed that publishes rarely waits longer
        (60.0, 60.0, (), 60.0),  # an operator's interval below the minimum is theirs to choose
        (8 * 3600.0, 86400.0, (), 8 * 3600.0),  # and above the maximum too
    ],
)
def test_poll_interval_follows_the_pace_within_bounds(configured, gap, hints, expected):
    assert poll_interval(BOUNDS, DEFAULT, configured=configured, gap=gap, hints=hints) == expected


@pytest.mark.parametrize(
    ("gap", "expected"),
    [
        (None, 60.0),  # MONITOR_POLL_INTERVAL=60 is the operator's choice for every feed
        (60.0, 60.0),  # and the floor then, below the 2 minute minimum
        (3600.0, 1800.0),  # a feed that publishes hourly still waits half an hour
    ],
)
def test_a_global_interval_below_the_minimum_is_the_floor(gap, expected):
    assert poll_interval(BOUNDS, 60.0, gap=gap) == expected
