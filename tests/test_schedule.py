from datetime import UTC, datetime, timedelta

import pytest

from monitor.schedule import (
    NOT_FOUND_LIMIT,
    Pacing,
    after_pause,
    after_send,
    alert_since,
    attention_reason,
    delivery_retry_at,
    next_poll_at,
    retry_after_at,
    send_at,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("interval", "errors", "jitter", "expected"),
    [
        (300, 0, 0.0, timedelta(seconds=300)),
        (300, 0, 1.0, timedelta(seconds=330)),
        (300, 0, -1.0, timedelta(seconds=270)),
        (300, 1, 0.0, timedelta(seconds=600)),
        (300, 3, 0.0, timedelta(seconds=2400)),
        (300, 12, 0.0, timedelta(hours=24)),
        (300, 500, 0.0, timedelta(hours=24)),
        (300, 500, 1.0, timedelta(hours=24) * 1.1),
        (300, 0, 7.0, timedelta(seconds=330)),
    ],
)
def test_next_poll_backs_off_with_a_ceiling(interval, errors, jitter, expected):
    assert next_poll_at(NOW, interval, errors, jitter) == NOW + expected


def test_only_the_first_poll_limits_alerts_to_the_window():
    assert alert_since(NOW, first_poll=True, window_hours=24) == NOW - timedelta(hours=24)
    assert alert_since(NOW, first_poll=False, window_hours=24) is None


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [
        (0, None, timedelta(seconds=30)),
        (1, None, timedelta(seconds=60)),
        (10, None, timedelta(minutes=5)),  # minutes, not an hour (#9)
        (0, 3600.0, timedelta(minutes=15)),  # a Retry-After is believed up to a ceiling
        (0, 120.0, timedelta(seconds=120)),
        (5, 0.0, timedelta(seconds=1)),
    ],
)
def test_delivery_retry_honours_retry_after(attempts, retry_after, expected):
    assert delivery_retry_at(NOW, attempts, retry_after) == NOW + expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", NOW + timedelta(seconds=120)),
        (" 120 ", NOW + timedelta(seconds=120)),
        ("0", NOW),
        ("9" * 100, NOW + timedelta(hours=24)),  # capped before it overflows a timedelta
        ("Thu, 26 Nov 2026 12:30:00 GMT", NOW + timedelta(minutes=30)),
        ("Thu, 26 Nov 2026 12:30:00 -0000", NOW + timedelta(minutes=30)),  # parses naive
        ("Thursday, 26-Nov-26 12:30:00 GMT", NOW + timedelta(minutes=30)),  # obsolete, accepted
        ("Thu, 26 Nov 2026 11:00:00 GMT", NOW - timedelta(hours=1)),  # past: backoff wins
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("٣", None),  # a digit, but not an ASCII one
        (None, None),
    ],
)
def test_retry_after_is_delta_seconds_or_an_http_date(header, expected):
    assert retry_after_at(NOW, header) == expected


@pytest.mark.parametrize(
    ("interval", "errors", "jitter", "retry_after", "attention", "expected"),
    [
        # Issue #8: a 503 with Retry-After: 120 was retried after 20 s, then 40 s.
        (10, 1, 0.0, NOW + timedelta(seconds=120), False, timedelta(seconds=120)),
        (10, 2, 0.0, NOW + timedelta(seconds=120), False, timedelta(seconds=120)),
        (10, 2, 1.0, NOW + timedelta(seconds=120), False, timedelta(seconds=120)),
        # Never sooner than the backoff: a host asking for 5 s after 3 errors waits 80 s.
        (10, 3, 0.0, NOW + timedelta(seconds=5), False, timedelta(seconds=80)),
        (10, 1, 0.0, NOW - timedelta(hours=1), False, timedelta(seconds=20)),
        # Bounded: a week's Retry-After is a day.
        (10, 1, 0.0, NOW + timedelta(days=7), False, timedelta(hours=24)),
        # A feed that needs attention is polled daily, whatever its interval or errors.
        (10, 1, 0.0, None, True, timedelta(hours=24)),
        (300, 30, -1.0, None, True, timedelta(hours=24) * 0.9),
        (172800, 1, 0.0, None, True, timedelta(hours=24)),  # the backoff ceiling holds too
    ],
)
def test_next_poll_follows_the_host(interval, errors, jitter, retry_after, attention, expected):
    got = next_poll_at(NOW, interval, errors, jitter, retry_after=retry_after, attention=attention)
    assert got == NOW + expected


@pytest.mark.parametrize(
    ("status", "not_found", "reason"),
    [
        (
            410,
            0,
            "HTTP 410 Gone: the feed was removed; delete it from the feeds file",
        ),
        (404, 1, None),
        (404, NOT_FOUND_LIMIT - 1, None),
        (
            404,
            NOT_FOUND_LIMIT,
            "HTTP 404 Not Found 5 times in a row; "
            "fix the feed URL or delete it from the feeds file",
        ),
        (
            404,
            40,
            "HTTP 404 Not Found 40 times in a row; "
            "fix the feed URL or delete it from the feeds file",
        ),
        (503, 9, None),
        (None, 0, None),
    ],
)
def test_a_gone_feed_needs_attention(status, not_found, reason):
    assert attention_reason(status, not_found) == reason


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("pacing", "due", "now", "expected"),
    [
        (Pacing(), None, at(0), at(0)),  # a channel never used: at once
        (Pacing(), at(1), at(0), at(0)),  # within the burst of two
        (Pacing(), at(2), at(0), at(1)),  # the burst spent: one a second
        (Pacing(), at(2), at(5), at(5)),  # idle long enough: at once
        (Pacing(interval=1, burst=1), at(1), at(0), at(1)),  # no burst
        (Pacing(interval=0.5, burst=3), at(2), at(0), at(1)),
    ],
)
def test_send_at_paces_a_channel(pacing, due, now, expected):
    assert send_at(pacing, due, now) == expected


@pytest.mark.parametrize(
    ("due", "sent", "expected"),
    [(None, at(0), at(1)), (at(1), at(0), at(2)), (at(1), at(10), at(11))],
)
def test_after_send_moves_the_channel_on_one_interval(due, sent, expected):
    assert after_send(Pacing(), due, sent) == expected


@pytest.mark.parametrize(
    ("due", "retry_at", "expected"),
    [
        (None, at(30), at(31)),  # then one message at the retry time, then paced
        (at(5), at(30), at(31)),
        (at(60), at(30), at(60)),  # a pause never brings the channel sooner
    ],
)
def test_after_pause_opens_the_channel_at_its_retry_time(due, retry_at, expected):
    assert after_pause(Pacing(), due, retry_at) == expected
    assert send_at(Pacing(), after_pause(Pacing(), due, retry_at), NOW) >= retry_at
