"""Operations (issue #11): `/healthz` and `/metrics` only, the new metrics, and retention.

Health and metrics are read over HTTP from a real `monitor run` and from a Service whose
PostgreSQL is stopped; retention runs on a real SQLite file and a real PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError
from monitor.health import assess
from monitor.metrics import Metrics, response_class
from monitor.model import FeedSpec
from monitor.pipeline import FeedReport, PollReport
from monitor.service import Service
from monitor.store import Store
from tests.support.pg import PostgresHandle
from tests.test_cli import free_port, scrape
from tests.test_cli import rules_dir as rules_dir  # a fixture
from tests.test_compose import compose
from tests.test_service import fake_edges
from tests.test_store import FEED_A, FEED_B, LEASE, NOW, article, match, poll

RSS = (
    '<rss version="2.0"><channel><title>Wire</title>'
    "<item><title>Council bans facial recognition</title><link>https://n.example/1</link>"
    "<guid>1</guid></item></channel></rss>"
)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# -- /healthz and /metrics ---------------------------------------------------------------


def test_a_running_worker_serves_health_and_metrics_and_nothing_else(
    tmp_path: Path, feed_server, rules_dir
) -> None:
    feed_server.add("/wire.xml", RSS)
    feeds = tmp_path / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - url: {feed_server.url('/wire.xml')}\n")
    port = free_port()
    env = {
        **os.environ,
        "MONITOR_FEEDS": str(feeds),
        "MONITOR_RULES": str(rules_dir),
        "MONITOR_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}",
        "MONITOR_ALLOW_PRIVATE_ADDRESSES": "true",
        "MONITOR_METRICS_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "monitor", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health: dict[str, object] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and health.get("last_cycle_at") is None:
            time.sleep(0.2)
            try:
                status, body = get(f"http://127.0.0.1:{port}/healthz")
            except OSError:  # not listening yet
                continue
            health = json.loads(body)
        assert status == 200, body
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
        elsewhere = [get(f"http://127.0.0.1:{port}{path}")[0] for path in ("/", "/metricsx")]
        # The probe docker-compose.yml gives each worker, pointed at this one.
        probe = compose()["services"]["monitor"]["healthcheck"]["test"][1:]
        probed = subprocess.run(
            [
                sys.executable if word == "python" else word.replace("9464", str(port))
                for word in probe
            ],
            capture_output=True,
            timeout=30,
            check=False,
        )
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert health["status"] == "ok" and health["problems"] == []
    assert (health["database"], health["scheduler"]) == ("ok", "running")
    assert health["stale_after_seconds"] == 900
    assert elsewhere == [404, 404]
    assert probed.returncode == 0, probed.stderr
    assert metrics['monitor_feed_responses_total{status="200"}'] == 1
    assert metrics['monitor_feed_responses_total{status="none"}'] == 0
    assert metrics["monitor_feed_fetch_seconds_count"] == 1
    assert metrics["monitor_lease_takeovers_total"] == 0
    assert f"metrics on http://127.0.0.1:{port}/metrics, health check at /healthz" in stderr


@pytest.mark.postgres
def test_health_fails_while_postgresql_is_down_and_recovers(
    postgres_server: PostgresHandle, postgres_url: str
) -> None:
    store = Store.open(postgres_url)
    store.upgrade()
    service = Service(
        load_settings({"MONITOR_FEEDS": "", "MONITOR_RULES": ""}), store, fake_edges()
    )
    service.scheduler_running = lambda: True
    port = service.metrics.serve("127.0.0.1", 0, service.health)
    try:
        service.poll()  # no feeds: still a finished cycle
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        postgres_server.stop()
        try:
            status, body = get(f"http://127.0.0.1:{port}/healthz")
        finally:
            postgres_server.start()
        verdict = json.loads(body)
        assert status == 503
        assert verdict["status"] == "failing" and verdict["database"] == "unreachable"
        assert verdict["problems"][0].startswith("database: ")
        assert "password" not in body
        assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # a new connection works
    finally:
        service.metrics.close()
        store.close()


def test_health_verdicts() -> None:
    fine: dict[str, Any] = dict(database_error=None, scheduler_running=True, started_at=NOW)
    stale = timedelta(minutes=15)
    assert assess(NOW, last_cycle_at=None, stale_after=stale, **fine).ok  # starting up
    late = assess(NOW + timedelta(minutes=16), last_cycle_at=None, stale_after=stale, **fine)
    assert late.problems == (
        "poll: started, and no cycle finished 960s ago (MONITOR_HEALTH_STALE_AFTER is 900s)",
    )
    recent = NOW + timedelta(hours=1)
    ok = assess(recent + timedelta(minutes=1), last_cycle_at=recent, stale_after=stale, **fine)
    assert ok.ok and ok.body()["last_cycle_age_seconds"] == 60
    stuck = assess(recent + timedelta(hours=1), last_cycle_at=recent, stale_after=stale, **fine)
    assert stuck.problems == (
        "poll: the last poll cycle finished 3600s ago (MONITOR_HEALTH_STALE_AFTER is 900s)",
    )
    stopped = assess(
        NOW,
        database_error=None,
        scheduler_running=False,
        started_at=NOW,
        last_cycle_at=NOW,
        stale_after=stale,
    )
    assert stopped.problems == ("scheduler: not running",) and not stopped.ok


def test_fetch_metrics_count_responses_by_status_and_take_overs() -> None:
    metrics = Metrics()
    report = PollReport(
        feeds=(
            FeedReport("a", "updated", status=200, fetch_seconds=0.2),
            FeedReport("b", "not-modified", status=304, fetch_seconds=0.01),
            FeedReport("c", "failed", status=503, fetch_seconds=1.5),
            FeedReport("d", "failed", status=None, fetch_seconds=20.0),
        ),
        taken_over=2,
    )
    metrics.record_poll(report)
    sample = metrics.registry.get_sample_value
    assert [sample("monitor_feed_responses_total", {"status": s}) for s in RESPONSE_ORDER] == [
        1.0,
        1.0,
        0.0,
        1.0,
        1.0,
    ]
    assert sample("monitor_feed_fetch_seconds_count") == 4
    assert sample("monitor_feed_fetch_seconds_bucket", {"le": "0.25"}) == 2
    assert sample("monitor_lease_takeovers_total") == 2
    assert [response_class(code) for code in (201, 302, 404, 700)] == ["2xx", "3xx", "4xx", "none"]


RESPONSE_ORDER = ("200", "304", "4xx", "5xx", "none")


# -- lease take-overs ----------------------------------------------------------------------


def test_a_claim_says_which_feeds_it_took_from_a_lease_that_ran_out(store: Store) -> None:
    first = store.claim_due_feeds(NOW, LEASE, owner="w1")  # w1 then dies
    assert [feed.taken_over for feed in first] == [False, False]
    store.record_poll(poll(FEED_A, at=NOW, next_poll_at=NOW))  # FEED_A's outcome ends its claim
    later = store.claim_due_feeds(NOW + LEASE, LEASE, owner="w2")
    assert [(feed.url, feed.taken_over) for feed in later] == [
        (FEED_A.url, False),
        (FEED_B.url, True),
    ]


# -- retention -----------------------------------------------------------------------------

OLD = NOW - timedelta(days=100)
CUTOFF = NOW - timedelta(days=90)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED_A, FEED_B], OLD)
    yield store
    store.close()


def stored(store: Store) -> list[str]:
    return sorted(row.article.entry_id for row in store.stored_articles(limit=100))


def test_retention_removes_what_left_the_feed_and_keeps_what_it_still_carries(
    store: Store,
) -> None:
    gone, kept = article("gone"), article("kept")
    store.record_poll(poll(FEED_A, (gone, [match("r")]), (kept, [match("r")]), at=OLD))
    for delivery in store.claim_deliveries(OLD, LEASE, 10):
        store.mark_delivered(delivery.id, OLD, "1.1")
    # Today the feed still carries `kept` and no longer `gone`.
    store.record_poll(poll(FEED_A, (kept, []), (article("new"), []), at=NOW))
    assert store.prune(CUTOFF, dry_run=True) == {"articles": 1, "matches": 1, "deliveries": 1}
    assert stored(store) == ["gone", "kept", "new"]  # a dry run removes nothing
    assert store.prune(CUTOFF) == {"articles": 1, "matches": 1, "deliveries": 1}
    assert stored(store) == ["kept", "new"]
    assert [m.match.rule_id for m in store.recent_matches()] == ["r"]  # kept's match stays
    # The next poll of the same document stores and alerts nothing: dedupe still knows it.
    assert store.record_poll(poll(FEED_A, (kept, [match("r")]), at=NOW)).new_articles == 0
    assert store.prune(CUTOFF) == {"articles": 0, "matches": 0, "deliveries": 0}


def test_retention_keeps_an_unchanged_feed_and_an_alert_not_sent_yet(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("quiet"), []), at=OLD))  # then only 304s
    store.record_poll(poll(FEED_A, at=NOW, status=304))
    store.record_poll(poll(FEED_B, (article("waiting", FEED_B), [match("r")]), at=OLD))
    store.record_poll(poll(FEED_B, (article("fresh", FEED_B), []), at=NOW))
    assert store.prune(CUTOFF) == {"articles": 0, "matches": 0, "deliveries": 0}
    assert stored(store) == ["fresh", "quiet", "waiting"]
    [delivery] = store.claim_deliveries(NOW, LEASE, 10)
    store.mark_failed(delivery.id, NOW, "channel_not_found", retry_at=None)
    assert store.prune(CUTOFF) == {"articles": 1, "matches": 1, "deliveries": 1}
    assert stored(store) == ["fresh", "quiet"]


def test_retention_removes_old_articles_of_a_removed_feed(store: Store) -> None:
    store.record_poll(poll(FEED_B, (article("b1", FEED_B), []), at=OLD))
    store.sync_feeds([FEED_A], NOW)  # FEED_B left the feeds file
    assert store.prune(CUTOFF)["articles"] == 1
    assert stored(store) == []


def test_retention_must_be_off_or_at_least_a_day() -> None:
    assert load_settings({"MONITOR_RETENTION": "0"}).retention == 0
    assert load_settings({}).retention == 90 * 86400
    with pytest.raises(ConfigError) as caught:
        load_settings({"MONITOR_RETENTION": "6h"})
    assert "MONITOR_RETENTION" in str(caught.value)
    assert "must be 0 (keep everything) or at least 1d" in str(caught.value)


def test_db_prune_through_the_cli(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = Store.open(url)
    store.upgrade()
    store.sync_feeds([FeedSpec(FEED_A.url)], OLD)
    now = datetime.now(UTC)
    store.record_poll(poll(FEED_A, (article("a", published=now), []), at=now - timedelta(days=40)))
    store.record_poll(poll(FEED_A, (article("b", published=now), []), at=now))
    store.close()
    env = {**os.environ, "MONITOR_DATABASE_URL": url}
    command = [sys.executable, "-m", "monitor", "db", "prune"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    default = run("--dry-run")  # 90 days keeps both
    assert default.stdout == (
        f"{url}: would remove 0 articles, 0 matches, 0 deliveries not seen since"
        f" {(now - timedelta(days=90)):%Y-%m-%d %H:%M} UTC\n"
    ), default.stderr
    dry = run("--older-than", "30d", "--dry-run")
    assert "would remove 1 article, 0 matches, 0 deliveries" in dry.stdout
    real = run("--older-than", "30d")
    assert "removed 1 article, 0 matches, 0 deliveries" in real.stdout
    bad = run("--older-than", "soon")
    assert bad.returncode == 2
    assert "--older-than" in bad.stderr and "expected a duration such as 90s" in bad.stderr
