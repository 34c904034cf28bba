"""The gauges and counters an operator alerts on for delivery (#9): the queue per channel,
its oldest alert, and scheduled runs that were skipped (APScheduler's own events)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler

from monitor.metrics import Metrics
from monitor.service import count_skipped_runs
from monitor.store.store import Store
from tests.test_delivery_failures import FEED, queue

WAIT_S = 30  # far above what the scheduler needs, so only a hang meets it


def test_pending_gauges_per_channel_with_the_oldest_age(database_url):
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED], datetime.now(UTC))
    now = datetime.now(UTC)
    queue(store, 3, "#news", found=now - timedelta(hours=2))
    queue(store, 2, "#alerts", rule="storm", found=now - timedelta(minutes=5))
    metrics = Metrics()

    metrics.record_pending(store.pending_by_channel(), now)

    def sample(name: str, channel: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"channel": channel})

    assert sample("monitor_pending_deliveries", "#news") == 3
    assert sample("monitor_pending_deliveries", "#alerts") == 2
    oldest = sample("monitor_oldest_pending_delivery_seconds", "#news")
    assert oldest is not None and abs(oldest - 7200) < 5
    store.close()

    metrics.record_pending({}, now)  # the queue emptied: the series go, not stay at old values
    assert sample("monitor_pending_deliveries", "#news") is None


def test_skipped_scheduler_runs_are_counted_by_job_and_reason():
    metrics = Metrics()
    scheduler = BackgroundScheduler(timezone=UTC)
    count_skipped_runs(scheduler, metrics)
    release = threading.Event()
    now = datetime.now(UTC)
    # A run that outlasts its interval: the next ones meet max_instances=1.
    scheduler.add_job(lambda: release.wait(WAIT_S), "interval", seconds=0.2, id="deliver")
    # A run due long before the scheduler started, beyond its grace time: missed.
    scheduler.add_job(
        lambda: None, "date", run_date=now - timedelta(seconds=30), id="poll", misfire_grace_time=1
    )
    scheduler.start()
    try:

        def count(job: str, reason: str) -> float:
            value = metrics.registry.get_sample_value(
                "monitor_scheduler_skipped_runs_total", {"job": job, "reason": reason}
            )
            return value or 0.0

        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not (
            count("deliver", "max_instances") >= 1 and count("poll", "missed") >= 1
        ):
            time.sleep(0.1)
        assert count("deliver", "max_instances") >= 1
        assert count("poll", "missed") == 1
    finally:
        release.set()
        scheduler.shutdown(wait=True)
