"""The composition root: builds the real adapters from Settings and runs them.

`build_edges` is the one place the real fetcher, parse pool and alert sender are
built; `Service` drives them with the store and the live rules, and `run_forever`
hands its three methods to APScheduler. Building a Service reads nothing: the rules
and the feeds file are read by `start`. The scheduler stays thin: `job_table` says
what each job runs, how often, coalesced, one instance at a time, with a misfire grace.
Summaries of each run are logged by the jobs; `monitor poll --once` prints its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING

from monitor.config import Settings, format_duration
from monitor.digest import DigestReport, send_digests
from monitor.digest_schedule import digest_trigger, next_digest_at
from monitor.errors import ConfigError, MonitorError
from monitor.feeds.catalog import load_feeds
from monitor.feeds.fetch import Fetcher, FetchOptions
from monitor.gate import DeliveryPolicy
from monitor.health import Health, assess
from monitor.live_rules import LiveRules, snapshot
from monitor.matching import RuleSet
from monitor.metrics import Metrics
from monitor.notify.base import AlertRenderer, AlertSender
from monitor.notify.console import ConsoleSender
from monitor.notify.render import render_alert, render_notice
from monitor.notify.slack import SlackBotSender, SlackWebhookSender
from monitor.notify.template import AlertTemplate
from monitor.pipeline import (
    DeliveryReport,
    Expiry,
    PollReport,
    PollSettings,
    deliver_pending,
    poll_cycle,
)
from monitor.ports import FeedReader, OpenFetcher, OpenReader
from monitor.reader import ArticleReader, ParseBudget
from monitor.schedule import PollBounds
from monitor.store.store import Store

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

log = logging.getLogger(__name__)

RELOAD_INTERVAL_SECONDS = 5.0
PRUNE_INTERVAL_SECONDS = 3600.0  # retention runs hourly, in bounded batches


def build_sender(settings: Settings) -> AlertSender:
    """Slack bot if a token is set, else an incoming webhook, else the console."""
    if settings.slack_bot_token:
        return SlackBotSender(
            settings.slack_bot_token,
            base_url=settings.slack_api_url,
            max_retries=settings.slack_max_retries,
            max_retry_wait=settings.slack_max_retry_wait,
        )
    if settings.slack_webhook_url:
        return SlackWebhookSender(
            settings.slack_webhook_url,
            max_retries=settings.slack_max_retries,
            max_retry_wait=settings.slack_max_retry_wait,
        )
    return ConsoleSender()


def check_sources(settings: Settings) -> None:
    """A feeds file or rules folder that is not there stops the program before it starts.

    Otherwise the service would run with 0 feeds or 0 rules and never say why.
    """
    feeds, rules = settings.feeds_file, settings.rules_dir
    if feeds is not None and not feeds.is_file():
        raise ConfigError(
            "MONITOR_FEEDS",
            f"no feeds file at {feeds.absolute()}; set MONITOR_FEEDS to its path, "
            "or to an empty value to run without feeds",
        )
    if rules is not None and not rules.exists():
        raise ConfigError(
            "MONITOR_RULES",
            f"no rules folder at {rules.absolute()}; set MONITOR_RULES to it, "
            "or to an empty value to run without rules",
        )


def delivery_policy(rules: RuleSet, settings: Settings) -> DeliveryPolicy:
    """What the rules and the settings say about holding alerts back (monitor.gate)."""
    return DeliveryPolicy(
        digest_rules=frozenset(rule.id for rule in rules.rules if rule.delivery.digest),
        rule_max_per_hour={
            rule.id: rule.delivery.max_per_hour
            for rule in rules.rules
            if rule.delivery.max_per_hour is not None
        },
        channel_max_per_hour=settings.channel_max_per_hour or None,
        quiet_hours=settings.quiet_hours,
        default_channel=settings.slack_channel,
    )


def digest_schedules(rules: RuleSet) -> dict[str, tuple[str, str]]:
    """rule id -> (crontab, time zone) of each rule delivered as a digest."""
    return {
        rule.id: (rule.delivery.digest, rule.delivery.timezone)
        for rule in rules.rules
        if rule.delivery.digest
    }


def describe_sender(settings: Settings) -> str:
    if settings.slack_bot_token:
        return f"Slack (bot token, default channel {settings.slack_channel or 'none'})"
    if settings.slack_webhook_url:
        return "Slack (incoming webhook)"
    return "the console (no SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL set)"


@dataclass(frozen=True, slots=True)
class Edges:
    """The adapters a Service drives besides its store: real from `build_edges`, or fakes."""

    sender: AlertSender
    open_fetcher: OpenFetcher
    open_reader: OpenReader
    render: AlertRenderer = render_alert  # the default layout, or the operator's template


def build_edges(settings: Settings) -> Edges:
    """The real fetcher (one aiohttp session per cycle), parse pool and alert sender."""
    budget = ParseBudget(settings.parse_cpu_limit, settings.parse_timeout)
    return Edges(
        sender=build_sender(settings),
        open_fetcher=Fetcher,
        open_reader=partial(ArticleReader, workers=settings.parse_workers, budget=budget),
        render=build_renderer(settings),
    )


def build_renderer(settings: Settings) -> AlertRenderer:
    """The operator's template, loaded and checked now (a bad one stops the start), else ours."""
    if settings.slack_template is None:
        return render_alert
    return AlertTemplate.load(settings.slack_template).render


class Service:
    """Everything one media-monitor process runs: a poll, a delivery and a reload job."""

    def __init__(self, settings: Settings, store: Store, edges: Edges | None = None) -> None:
        self.settings = settings
        self.store = store
        self.edges = edges or build_edges(settings)
        self._paces: dict[str, datetime] = {}  # each channel's pace, across delivery runs
        self.poll_settings = PollSettings(
            fetch=FetchOptions.from_settings(settings),
            poll_interval=settings.poll_interval,
            alert_window_hours=settings.alert_window_hours,
            claim_batch=settings.claim_batch,
            lease=settings.lease,
            bounds=PollBounds(settings.min_interval, settings.max_interval),
            per_host=settings.per_host,
        )
        self.metrics = Metrics()
        # Set on SIGINT/SIGTERM: the cycle in progress claims no more and gives back the rest.
        self.stopping = threading.Event()
        self._rules: LiveRules | None = None  # None: not started
        self._feeds_snapshot: dict[str, str] | None = None  # None: never synced
        self._reader: tuple[RuleSet, FeedReader] | None = None
        self.started_at = datetime.now(UTC)
        self.last_cycle_at: datetime | None = None  # when a poll cycle last finished
        # Whether the jobs run; `run_forever` points it at its scheduler.
        self.scheduler_running: Callable[[], bool] = lambda: False

    def start(self) -> None:
        """Load the rules and sync the feeds file; polls and reloads start it if nobody did.

        Called before the scheduler starts, so its jobs never race to do it. With story
        clustering on (MONITOR_CLUSTER_WINDOW), its index is rebuilt from the database here.
        """
        self._live_rules()
        window = self.settings.cluster_window
        if window:
            started = time.monotonic()
            loaded = self.store.cluster_stories(timedelta(seconds=window), datetime.now(UTC))
            log.debug(
                "story clusters: %d articles of the last %s indexed in %.1fs",
                loaded,
                format_duration(window),
                time.monotonic() - started,
            )

    def _live_rules(self) -> LiveRules:
        if self._rules is None:
            self._rules = LiveRules(
                self.settings.rules_dir, on_problems=self._notify_ops, metrics=self.metrics
            )
            self.sync_feeds()
        return self._rules

    @property
    def rules(self) -> LiveRules:
        return self._live_rules()

    def health(self) -> Health:
        """The verdict `/healthz` serves: the database answers, the jobs run, cycles finish."""
        return assess(
            datetime.now(UTC),
            database_error=self.store.ping(),
            scheduler_running=self.scheduler_running(),
            started_at=self.started_at,
            last_cycle_at=self.last_cycle_at,
            stale_after=timedelta(seconds=self.settings.health_stale_after),
        )

    def serve_metrics(self) -> None:
        """Start the /metrics and /healthz endpoint if MONITOR_METRICS_PORT is set."""
        host, port = self.settings.metrics_host, self.settings.metrics_port
        if port is None:
            return
        try:
            port = self.metrics.serve(host, port, self.health)
        except OSError as exc:
            raise ConfigError(
                "MONITOR_METRICS_PORT",
                f"cannot listen on {host}:{port} ({exc.strerror or exc});"
                " choose a free port, or unset it to run without metrics",
            ) from exc
        log.info("metrics on http://%s:%d/metrics, health check at /healthz", host, port)

    def close(self) -> None:
        self.metrics.close()
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None

    def _current_reader(self) -> FeedReader:
        """The reader for the rules now live; rebuilt after a reload (polls never overlap)."""
        rules = self.rules.ruleset
        if self._reader is not None and self._reader[0] is not rules:
            self._reader[1].close()
            self._reader = None
        if self._reader is None:
            self._reader = (rules, self.edges.open_reader(rules))
        return self._reader[1]

    def sync_feeds(self) -> None:
        """Read the feeds file again if it changed; a broken edit keeps the feeds as they were.

        Without a feeds file (MONITOR_FEEDS empty) no feed is watched.
        """
        path = self.settings.feeds_file
        files = snapshot(path) if path is not None else {}
        if files == self._feeds_snapshot:
            return
        feeds = load_feeds(path) if path is not None else ()
        self.store.sync_feeds(feeds, datetime.now(UTC))
        self._feeds_snapshot = files
        if path is None:
            log.info("no feeds file (MONITOR_FEEDS is empty): no feeds are polled")
        else:
            log.info("feeds file %s: %d feeds", path, len(feeds))

    def poll(self, *, every: bool = False) -> PollReport:
        """Poll the due feeds, or all active feeds with ``every`` (`monitor poll --once`)."""
        reader = self._current_reader()
        self.store.use_policy(delivery_policy(self.rules.ruleset, self.settings))
        cycle = poll_cycle(
            self.store,
            self.edges.open_fetcher,
            reader,
            self.poll_settings,
            every=every,
            stopping=self.stopping.is_set,
        )
        report = asyncio.run(cycle)
        self.last_cycle_at = datetime.now(UTC)
        self.metrics.record_poll(report)
        self.metrics.record_feeds(self.store.tally_feeds())
        self.metrics.record_holds(self.store.hold_counts())
        for feed in report.feeds:
            if feed.held_back:
                log.info(
                    "%s: first poll: %d %s stored without an alert, published more than %gh ago "
                    "(the alert window, MONITOR_ALERT_WINDOW_HOURS)",
                    feed.url,
                    feed.held_back,
                    "match" if feed.held_back == 1 else "matches",
                    self.settings.alert_window_hours,
                    extra={"feed_url": feed.url},
                )
        return report

    def deliver(self) -> DeliveryReport:
        """Send the due alerts, then the due summaries and digests.

        Matches held through quiet hours or over an hourly limit are released first, so the
        few that go out as ordinary alerts are in this run. Digests are bundled only on
        their schedule (`send_digest`), never here.
        """
        queued, summaries = self.store.release_held(datetime.now(UTC))
        if queued or summaries:
            log.info("held alerts released: %d queued, %d summaries", queued, summaries)
        report = deliver_pending(
            self.store,
            self.edges.sender,
            default_channel=self.settings.slack_channel,
            batch=self.settings.delivery_batch,
            lease=timedelta(seconds=self.settings.delivery_lease),
            paces=self._paces,
            group_above=self.settings.group_above,
            render=self.edges.render,
            severity_channels=self.settings.severity_channels,
            expiry=Expiry(timedelta(seconds=self.settings.delivery_max_age), self._routes()),
        )
        self.metrics.record_delivery(report)
        self.metrics.record_pending(self.store.pending_by_channel(), datetime.now(UTC))
        self.send_digests()
        self.metrics.record_holds(self.store.hold_counts())
        return report

    def send_digest(self, rule_id: str | None = None) -> DigestReport:
        """Bundle the matches waiting for a digest (of one rule, or all) and send it now."""
        made = self.store.bundle_digests(datetime.now(UTC), rule_id)
        log.debug("digests bundled for %s: %d", rule_id or "every rule", made)
        return self.send_digests()

    def send_digests(self) -> DigestReport:
        report = send_digests(
            self.store, self.edges.sender, default_channel=self.settings.slack_channel
        )
        self.metrics.record_digests(report)
        if report.sent or report.retrying or report.failed:
            log.info(
                "digests: %d sent (%d matches), %d to retry, %d failed",
                report.sent,
                report.matches,
                report.retrying,
                report.failed,
            )
        return report

    def _routes(self) -> dict[str, frozenset[str]] | None:
        """Where live rules send, for expiry; None while a rule file has errors, since the
        rule that seems gone may be the broken one."""
        loaded = self.rules.current
        return rule_routes(loaded.ruleset) if loaded.ok else None

    def prune(self) -> dict[str, int]:
        """Remove what MONITOR_RETENTION no longer keeps; a no-op when retention is off."""
        retention = self.settings.retention
        if not retention:
            return {}
        cutoff = datetime.now(UTC) - timedelta(seconds=retention)
        counts = self.store.prune(cutoff)
        self.metrics.record_pruned(counts)
        if counts["articles"]:
            log.info(
                "retention: removed %s older than %s (MONITOR_RETENTION)",
                describe_pruned(counts),
                cutoff.strftime("%Y-%m-%d %H:%M UTC"),
            )
        return counts

    def reload(self) -> None:
        self.rules.refresh()
        try:
            self.sync_feeds()
        except Exception as exc:  # a broken feeds edit must not stop the service
            log.error("feeds file not reloaded, the previous feeds stay active: %s", exc)

    def _notify_ops(self, summary: str) -> None:
        channel = self.settings.ops_channel
        if channel is None or not self.settings.slack_configured:
            return
        try:
            self.edges.sender.send(channel, render_notice(summary))
        except Exception as exc:  # the ops notice is best effort; the log already has it
            log.error("could not tell %s about rule errors: %s", channel, exc)


def rule_routes(ruleset: RuleSet) -> dict[str, frozenset[str]]:
    """Each enabled rule's channels ("" for the default): what may still receive its alerts."""
    return {
        rule.id: frozenset(rule.channels) or frozenset({""})
        for rule in ruleset.rules
        if rule.enabled
    }


def log_poll(report: PollReport) -> None:
    if report.feeds:
        log.info(
            "polled %d feeds (%d failed): %d new articles, %d matches, %d alerts queued",
            len(report.feeds),
            len(report.failed),
            report.new_articles,
            report.new_matches,
            report.new_alerts,
        )


def describe_pruned(counts: dict[str, int]) -> str:
    """`3 articles, 2 matches, 2 deliveries`, for the log and `monitor db prune`."""
    singular = {"articles": "article", "matches": "match", "deliveries": "delivery"}
    return ", ".join(
        f"{count} {table if count != 1 else singular.get(table, table)}"
        for table, count in counts.items()
    )


def log_delivery(report: DeliveryReport) -> None:
    if report.sent or report.retrying or report.failed or report.expired:
        log.info("alerts: %s", describe_delivery(report))


def describe_delivery(report: DeliveryReport) -> str:
    """`3 sent, 1 to retry, 0 failed`, then the expired and uncertain ones if any."""
    parts = [f"{report.sent} sent, {report.retrying} to retry, {report.failed} failed"]
    if report.expired:
        parts.append(f"{report.expired} expired")
    if report.uncertain:
        parts.append(f"{report.uncertain} uncertain (may be in Slack twice)")
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class Job:
    """One scheduler job as `run_forever` adds it: an interval trigger and its limits."""

    id: str
    name: str
    run: Callable[[], None]
    seconds: float  # the interval
    first_run: datetime
    coalesce: bool = True  # runs missed while one was running become one run
    max_instances: int = 1
    misfire_grace_time: float = 60  # seconds late a run may still start


# A digest that could not start on time (a busy executor) still goes within the hour.
DIGEST_MISFIRE_GRACE = 3600


def job_runner(work: Callable[[], object], what: str) -> Callable[[], None]:
    """``work`` as a job: an expected failure (the database restarting, say) is one log line,
    not a traceback; the next run retries, and leases bring back anything claimed."""

    def run() -> None:
        try:
            work()
        except MonitorError as exc:
            log.error("%s failed, will retry: %s", what, exc)

    return run


def job_table(service: Service, now: datetime) -> tuple[Job, ...]:
    """The poll, delivery and reload jobs, starting from ``now``; starts no scheduler."""

    job = job_runner
    settings = service.settings
    return (
        Job(
            "poll",
            "poll due feeds",
            job(lambda: log_poll(service.poll()), "poll"),
            settings.poll_tick,
            first_run=now,
        ),
        Job(
            "deliver",
            "send pending alerts",
            job(lambda: log_delivery(service.deliver()), "delivery"),
            settings.delivery_interval,
            first_run=now + timedelta(seconds=1),
        ),
        Job(
            "reload",
            "reload changed rules and feeds",
            job(service.reload, "reload"),
            RELOAD_INTERVAL_SECONDS,
            first_run=now + timedelta(seconds=RELOAD_INTERVAL_SECONDS),
        ),
        Job(
            "prune",
            "remove what MONITOR_RETENTION no longer keeps",
            job(service.prune, "retention"),
            PRUNE_INTERVAL_SECONDS,
            first_run=now + timedelta(seconds=60),
        ),
    )


def count_skipped_runs(scheduler: BaseScheduler, metrics: Metrics) -> None:
    """Count (and log) runs APScheduler skipped: too late to start, or the last still running."""
    from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent

    def skipped(event: JobEvent) -> None:
        reason = "missed" if event.code == EVENT_JOB_MISSED else "max_instances"
        metrics.record_skipped_run(event.job_id, reason)
        log.warning("scheduler: a run of the %s job was skipped (%s)", event.job_id, reason)

    scheduler.add_listener(skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)


def run_forever(service: Service) -> None:
    """Run the jobs until SIGINT or SIGTERM; jobs in progress finish (each is time-bounded)."""
    from apscheduler.executors.pool import ThreadPoolExecutor as JobThreads
    from apscheduler.schedulers.blocking import BlockingScheduler

    jobs = job_table(service, datetime.now(UTC))
    # A thread per job, and two for digests and following their schedules: a long poll
    # cycle never delays delivery, reloads or retention.
    scheduler = BlockingScheduler(
        executors={"default": JobThreads(max_workers=len(jobs) + 2)}, timezone=UTC
    )
    scheduled: dict[str, tuple[str, str]] = {}
    for job in jobs:
        scheduler.add_job(
            job.run,
            "interval",
            seconds=job.seconds,
            id=job.id,
            name=job.name,
            next_run_time=job.first_run,
            coalesce=job.coalesce,
            max_instances=job.max_instances,
            misfire_grace_time=job.misfire_grace_time,
        )

    def sync_digests() -> None:
        """One cron job per digest rule, following the rules as they are reloaded."""
        wanted = digest_schedules(service.rules.ruleset)
        for rule_id in [r for r in scheduled if wanted.get(r) != scheduled[r]]:
            scheduler.remove_job(f"digest:{rule_id}")
            del scheduled[rule_id]
        for rule_id, (crontab, zone) in wanted.items():
            if rule_id in scheduled:
                continue
            send = job_runner(partial(service.send_digest, rule_id), f"digest of {rule_id}")
            trigger = digest_trigger(crontab, zone)
            scheduler.add_job(
                send,
                trigger,
                id=f"digest:{rule_id}",
                name=f"digest of rule {rule_id} ({crontab} {zone})",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=DIGEST_MISFIRE_GRACE,
            )
            scheduled[rule_id] = (crontab, zone)
            log.info(
                "digest of rule %s on %r (%s): next at %s",
                rule_id,
                crontab,
                zone,
                next_digest_at(trigger, datetime.now(UTC)),
            )

    sync_digests()
    scheduler.add_job(
        job_runner(sync_digests, "digest schedules"),
        "interval",
        seconds=RELOAD_INTERVAL_SECONDS,
        id="digest-schedules",
        name="follow the digest schedules of reloaded rules",
        coalesce=True,
        max_instances=1,
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, stopping after the jobs in progress", signal.Signals(signum).name)
        service.stopping.set()
        # Not in the handler itself: waiting for the jobs there would block the main loop.
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    count_skipped_runs(scheduler, service.metrics)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    service.scheduler_running = lambda: bool(scheduler.running)
    try:
        service.serve_metrics()
        scheduler.start()
    finally:
        service.close()
