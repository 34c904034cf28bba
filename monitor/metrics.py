"""Prometheus metrics of one `monitor run` process, served when MONITOR_METRICS_PORT is set.

Counters cover what an operator alerts on: rule reloads that found errors (the last good
version of each broken rule stays active, so nothing else shows it), feed polls by outcome,
and alert deliveries by outcome. Gauges give the rules running, the errors in the rule
files as last loaded, and the active feeds by health (a feed that needs attention is polled
only daily, so its counter barely moves) and those that moved. Each Metrics has its own
registry, so two services in one process (as in tests) never share counts.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from monitor.digest import DigestReport
from monitor.matching import RuleLoad
from monitor.pipeline import DeliveryReport, PollReport
from monitor.store.store import FeedState

FEED_OUTCOMES = ("updated", "not-modified", "unchanged", "failed")
DELIVERY_OUTCOMES = ("sent", "retrying", "failed")
FEED_HEALTH = ("ok", "new", "failing", "attention")  # FeedState.health of an active feed


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
            "Alert sends by outcome: sent, retrying (re-queued) or failed (given up)",
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
        for health in FEED_HEALTH:
            self.feeds.labels(health)
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
        self.new_articles.inc(report.new_articles)
        self.new_matches.inc(report.new_matches)

    def record_feeds(self, states: Sequence[FeedState]) -> None:
        active = [state for state in states if state.active]
        for health in FEED_HEALTH:
            self.feeds.labels(health).set(sum(state.health == health for state in active))
        self.feeds_moved.set(sum(state.fetch_url is not None for state in active))

    def record_delivery(self, report: DeliveryReport) -> None:
        self.alert_deliveries.labels("sent").inc(report.sent)
        self.alert_deliveries.labels("retrying").inc(report.retrying)
        self.alert_deliveries.labels("failed").inc(report.failed)

    def record_holds(self, counts: Mapping[tuple[str, str], int]) -> None:
        for (reason, state), count in counts.items():
            self.held_matches.labels(reason, state).set(count)

    def record_digests(self, report: DigestReport) -> None:
        self.digests.labels("sent").inc(report.sent)
        self.digests.labels("retrying").inc(report.retrying)
        self.digests.labels("failed").inc(report.failed)

    def serve(self, host: str, port: int) -> int:
        """Serve /metrics on host:port in a daemon thread; return the port (0 picks one)."""
        self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
