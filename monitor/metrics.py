"""Prometheus metrics and the health check of one `monitor run` process.

Served when MONITOR_METRICS_PORT is set: `/metrics` and `/healthz`, nothing else (any other
path is a 404, so a typo in a scrape config or a probe shows at once).

Counters cover what an operator alerts on: rule reloads that found errors (the last good
version of each broken rule stays active, so nothing else shows it), feed polls by outcome,
alert deliveries by outcome and scheduled runs that were skipped. Gauges give the alerts
waiting per channel and the age of the oldest, the rules running, the errors in the rule
files as last loaded, and the active feeds by health (a feed that needs attention is polled
only daily, so its counter barely moves) and those that moved. Each Metrics has its own
registry, so two services in one process (as in tests) never share counts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

from monitor.digest import DigestReport
from monitor.health import Health
from monitor.matching import RuleLoad
from monitor.pipeline import DeliveryReport, PollReport
from monitor.store.store import FeedTally, PendingSummary

FEED_OUTCOMES = ("updated", "not-modified", "unchanged", "failed")
DELIVERY_OUTCOMES = ("sent", "retrying", "failed", "uncertain", "expired")
FEED_HEALTH = ("ok", "new", "failing", "attention")  # FeedState.health of an active feed
RESPONSES = ("200", "304", "2xx", "3xx", "4xx", "5xx", "none")  # "none": no HTTP answer
FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 60.0)  # seconds


def response_class(status: int | None) -> str:
    """The `status` label of a fetch: 200 and 304 exactly, other codes by class."""
    if status is None:
        return "none"
    if status in (200, 304):
        return str(status)
    return f"{status // 100}xx" if 200 <= status < 600 else "none"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rule_reload_failures = Counter(
            "monitor_rule_reload_failures",
            "Reloads of the rules folder that found errors; the last good version of each"
            " broken rule stayed active",
            registry=self.registry,
        )
        self.rules_active = Gauge(
            "monitor_rules_active", "Enabled rules running", registry=self.registry
        )
        self.rule_errors = Gauge(
            "monitor_rule_errors",
            "Errors in the rule files as last loaded (0 when every file is valid)",
            registry=self.registry,
        )
        self.feed_polls = Counter(
            "monitor_feed_polls", "Feed polls by outcome", ["outcome"], registry=self.registry
        )
        self.new_articles = Counter(
            "monitor_new_articles", "Articles seen for the first time", registry=self.registry
        )
        self.new_matches = Counter(
            "monitor_new_matches", "Rule matches on new articles", registry=self.registry
        )
        self.alert_deliveries = Counter(
            "monitor_alert_deliveries",
            "Alert sends by outcome: sent, retrying (re-queued), failed (given up), uncertain"
            " (no answer after sending: Slack may have it; retried once) or expired (not sent)",
            ["outcome"],
            registry=self.registry,
        )
        self.feeds = Gauge(
            "monitor_feeds",
            "Active feeds by health: ok, new, failing, attention (410 or repeated 404s)",
            ["health"],
            registry=self.registry,
        )
        self.feeds_moved = Gauge(
            "monitor_feeds_moved",
            "Active feeds fetched from where a permanent redirect moved them",
            registry=self.registry,
        )
        self.feed_responses = Counter(
            "monitor_feed_responses",
            "Feed fetches by HTTP status: 200, 304, 2xx, 3xx, 4xx, 5xx, or none (timeout, refused)",
            ["status"],
            registry=self.registry,
        )
        self.fetch_seconds = Histogram(
            "monitor_feed_fetch_seconds",
            "Seconds from a feed request to its whole body read (or the failure)",
            buckets=FETCH_BUCKETS,
            registry=self.registry,
        )
        self.lease_takeovers = Counter(
            "monitor_lease_takeovers",
            "Feeds claimed from a poll cycle whose lease ran out (its worker died or stalled)",
            registry=self.registry,
        )
        self.pruned = Counter(
            "monitor_pruned",
            "Rows removed by retention (MONITOR_RETENTION): articles, and with them matches"
            " and deliveries",
            ["table"],
            registry=self.registry,
        )
        self.held_matches = Gauge(
            "monitor_held_matches",
            "Matches held back from an immediate alert, by reason (digest, silence, quiet,"
            " throttle) and state (waiting, or released in a summary or as an alert)",
            ["reason", "state"],
            registry=self.registry,
        )
        self.digests = Counter(
            "monitor_digests",
            "Digests and summaries by outcome: sent, retrying or failed",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in DELIVERY_OUTCOMES:
            self.digests.labels(outcome)
        self.pending_deliveries = Gauge(
            "monitor_pending_deliveries",
            'Alerts waiting to be sent, per channel ("default": MONITOR_SLACK_CHANNEL)',
            ["channel"],
            registry=self.registry,
        )
        self.oldest_pending = Gauge(
            "monitor_oldest_pending_delivery_seconds",
            "Age of the oldest alert waiting to be sent, per channel",
            ["channel"],
            registry=self.registry,
        )
        self.skipped_runs = Counter(
            "monitor_scheduler_skipped_runs",
            "Scheduled job runs that did not happen: missed (late beyond their grace time) or"
            " max_instances (the previous run was still going)",
            ["job", "reason"],
            registry=self.registry,
        )
        for health in FEED_HEALTH:
            self.feeds.labels(health)
        for status in RESPONSES:
            self.feed_responses.labels(status)
        for table in ("articles", "matches", "deliveries"):
            self.pruned.labels(table)
        for outcome in FEED_OUTCOMES:  # every series exists from the start, at zero
            self.feed_polls.labels(outcome)
        for outcome in DELIVERY_OUTCOMES:
            self.alert_deliveries.labels(outcome)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def record_rules(self, loaded: RuleLoad, *, reload_failed: bool) -> None:
        self.rules_active.set(sum(rule.enabled for rule in loaded.ruleset.rules))
        self.rule_errors.set(sum(problem.severity == "error" for problem in loaded.problems))
        if reload_failed:
            self.rule_reload_failures.inc()

    def record_poll(self, report: PollReport) -> None:
        for feed in report.feeds:
            self.feed_polls.labels(feed.outcome).inc()
            if feed.fetch_seconds is not None:  # None: the cycle gave the feed back unpolled
                self.feed_responses.labels(response_class(feed.status)).inc()
                self.fetch_seconds.observe(feed.fetch_seconds)
        self.lease_takeovers.inc(report.taken_over)
        self.new_articles.inc(report.new_articles)
        self.new_matches.inc(report.new_matches)

    def record_feeds(self, tally: FeedTally) -> None:
        for health in FEED_HEALTH:
            self.feeds.labels(health).set(tally.by_health.get(health, 0))
        self.feeds_moved.set(tally.moved)

    def record_delivery(self, report: DeliveryReport) -> None:
        self.alert_deliveries.labels("sent").inc(report.sent)
        self.alert_deliveries.labels("retrying").inc(report.retrying)
        self.alert_deliveries.labels("failed").inc(report.failed)
        self.alert_deliveries.labels("uncertain").inc(report.uncertain)
        self.alert_deliveries.labels("expired").inc(report.expired)

    def record_pending(self, pending: Mapping[str, PendingSummary], now: datetime) -> None:
        """The queue per channel as it stands; a channel whose queue emptied leaves the series."""
        self.pending_deliveries.clear()
        self.oldest_pending.clear()
        for channel, summary in pending.items():
            label = channel or "default"
            self.pending_deliveries.labels(label).set(summary.count)
            age = (now - summary.oldest).total_seconds()
            self.oldest_pending.labels(label).set(max(age, 0.0))

    def record_skipped_run(self, job: str, reason: str) -> None:
        self.skipped_runs.labels(job, reason).inc()

    def record_pruned(self, counts: dict[str, int]) -> None:
        for table, count in counts.items():
            self.pruned.labels(table).inc(count)

    def serve(self, host: str, port: int, health: Callable[[], Health]) -> int:
        """Serve /metrics and /healthz on host:port in a daemon thread; return the port
        (0 picks one)."""
        server = make_server(
            host, port, _routes(self.registry, health), _ThreadingServer, _QuietHandler
        )
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        return int(server.server_port)

    def record_holds(self, counts: Mapping[tuple[str, str], int]) -> None:
        for (reason, state), count in counts.items():
            self.held_matches.labels(reason, state).set(count)

    def record_digests(self, report: DigestReport) -> None:
        self.digests.labels("sent").inc(report.sent)
        self.digests.labels("retrying").inc(report.retrying)
        self.digests.labels("failed").inc(report.failed)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def _routes(
    registry: CollectorRegistry, health: Callable[[], Health]
) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            served: Iterable[bytes] = metrics(environ, start_response)
            return served
        if path == "/healthz":
            verdict = health()
            status = "200 OK" if verdict.ok else "503 Service Unavailable"
            return _reply(start_response, status, json.dumps(verdict.body()), "application/json")
        return _reply(start_response, "404 Not Found", "not found: /metrics or /healthz\n")

    return app


def _reply(
    start_response: StartResponse, status: str, text: str, kind: str = "text/plain"
) -> list[bytes]:
    body = text.encode()
    headers = [("Content-Type", f"{kind}; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(status, headers)
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scrape never holds up a health probe."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access line on stderr for every scrape and probe."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
