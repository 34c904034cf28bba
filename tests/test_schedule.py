from datetime import UTC, datetime, timedelta

import pytest

from monitor.schedule import alert_since, delivery_retry_at, next_poll_at

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
        (10, None, timedelta(hours=1)),
        (0, 120.0, timedelta(seconds=120)),
        (5, 0.0, timedelta(seconds=1)),
    ],
)
def test_delivery_retry_honours_retry_after(attempts, retry_after, expected):
    assert delivery_retry_at(NOW, attempts, retry_after) == NOW + expected
