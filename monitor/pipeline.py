"""One poll cycle and one delivery run: the only places where the edges meet the core.

A poll cycle claims the feeds that are due, fetches them concurrently, hands
changed bodies to the reader (parse and match in worker processes) and writes
each feed's outcome in one transaction. A delivery run sends the pending
alerts and marks each sent only after Slack accepted it (store, then send,
then mark sent). Errors are values per feed and per alert: one failure is
recorded and never stops the rest. Both receive their edges as the Protocols of
`monitor.ports` and build none, so unit tests drive them with fakes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import islice
from typing import TypeVar
from urllib.parse import urlsplit

from monitor.errors import DeliveryError, FeedParseError, FetchError, RetryLaterError, shorten
from monitor.feeds.fetch import FetchOptions, FetchRequest
from monitor.feeds.parse import body_digest
from monitor.model import SEVERITIES
from monitor.notify.base import AlertRenderer, AlertSender
from monitor.notify.render import MAX_GROUP, SlackMessage, render_alert, render_group
from monitor.ports import DeliveryStore, FeedFetcher, FeedReader, OpenFetcher, PollStore
from monitor.schedule import (
    SLACK_PACING,
    Pacing,
    PollBounds,
    after_pause,
    after_send,
    alert_since,
    attention_reason,
    delivery_retry_at,
    freshness,
    next_poll_at,
    poll_interval,
    publish_gap,
    retry_after_at,
    send_at,
)
from monitor.store.store import FeedState, PendingDelivery, PollOutcome, PollSaved

log = logging.getLogger(__name__)

MAX_BATCH = 200  # outcomes per transaction: bounded, so one transaction never holds locks long

T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedReport:
    """What happened to one feed in one cycle."""

    url: str
    outcome: str  # "updated", "not-modified", "unchanged" or "failed"
    new_articles: int = 0
    new_matches: int = 0
    new_alerts: int = 0
    held_back: int = 0  # matches the alert window of a first poll kept from alerting
    error: str | None = None
    warnings: tuple[str, ...] = ()
    status: int | None = None  # the HTTP status; None when no answer came (timeout, refused)
    fetch_seconds: float | None = None  # from request to the whole body read


@dataclass(frozen=True, slots=True)
class PollReport:
    feeds: tuple[FeedReport, ...]
    taken_over: int = 0  # feeds claimed from a cycle whose lease ran out

    def count(self, outcome: str) -> int:
        return sum(1 for feed in self.feeds if feed.outcome == outcome)

    @property
    def new_articles(self) -> int:
        return sum(feed.new_articles for feed in self.feeds)

    @property
    def new_matches(self) -> int:
        return sum(feed.new_matches for feed in self.feeds)

    @property
    def new_alerts(self) -> int:
        return sum(feed.new_alerts for feed in self.feeds)

    @property
    def failed(self) -> tuple[FeedReport, ...]:
        return tuple(feed for feed in self.feeds if feed.outcome == "failed")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()


@dataclass(slots=True)
class PollSettings:
    """The few settings a poll cycle needs, so it never reads the whole Settings."""

    fetch: FetchOptions
    poll_interval: float = 300.0
    alert_window_hours: float = 24.0
    jitter: Callable[[], float] = field(default=lambda: random.uniform(-1.0, 1.0))
    claim_batch: int = 50  # feeds claimed at a time: workers on one database share a cycle
    lease: float = 30.0  # seconds a crashed worker's claims wait; renewed while in progress
    bounds: PollBounds = field(default_factory=PollBounds)  # adaptive intervals (#11)
    per_host: int = 4  # fetches at once from one host, beside fetch.concurrency

    @property
    def claim_lease(self) -> timedelta:
        return timedelta(seconds=self.lease)

    @property
    def renew_every(self) -> float:
        """Seconds between renewals: a lease survives two missed renewals."""
        return self.lease / 3


class OutcomeWriter:
    """Writes poll outcomes from one thread, batching those that wait into one transaction.

    A cycle of 1,000 feeds that all answer 304 is then a handful of transactions, not 1,000.
    """

    def __init__(self, store: PollStore) -> None:
        self._store = store
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._waiting: list[tuple[PollOutcome, asyncio.Future[PollSaved]]] = []
        self._flusher: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    async def write(self, outcome: PollOutcome) -> PollSaved:
        future: asyncio.Future[PollSaved] = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Any other store call, on the same thread as the writes."""
        call = partial(function, *args)
        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def _flush(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                saved = await self.run(self._store.record_polls, [o for o, _ in batch])
            except Exception as exc:  # every caller of the batch sees the failure
                for _, future in batch:
                    future.set_exception(exc)
            else:
                for (_, future), result in zip(batch, saved, strict=True):
                    future.set_result(result)

    def close(self) -> None:
        self._thread.shutdown(wait=True)


async def poll_cycle(
    store: PollStore,
    open_fetcher: OpenFetcher,
    reader: FeedReader,
    settings: PollSettings,
    clock: Clock = utc_now,
    *,
    every: bool = False,
    stopping: Callable[[], bool] = lambda: False,
) -> PollReport:
    """Poll each due feed (each active feed with ``every``) once; a feed's failure never raises.

    Feeds are claimed a batch at a time, topped up as polls finish, until none is due: so
    workers sharing a database split the cycle. The claims are renewed while they are
    polled, and those not polled yet are given back when ``stopping`` says so.
    """
    writer = OutcomeWriter(store)
    owner = uuid.uuid4().hex
    started = clock()
    held: set[str] = set()  # claimed by this cycle, outcome not written yet
    taken_over = 0

    async def claim(limit: int) -> list[FeedState]:
        nonlocal taken_over
        take = partial(store.claim_due_feeds, every=every, since=started, owner=owner)
        feeds = await writer.run(take, clock(), settings.claim_lease, limit)
        held.update(feed.url for feed in feeds)
        taken_over += sum(feed.taken_over for feed in feeds)
        return feeds

    try:
        due = await claim(settings.claim_batch)
        if not due:
            return PollReport(feeds=())
        # Bodies wait here for a parser, so bound how many feeds are between fetch and store.
        in_flight = asyncio.Semaphore(settings.fetch.concurrency)
        hosts = HostSlots(settings.per_host)
        async with open_fetcher(settings.fetch) as fetcher:

            async def poll(feed: FeedState) -> FeedReport | None:
                # The host's slot first: feeds waiting for a busy host hold no global slot,
                # so the other hosts' feeds go ahead of them.
                async with hosts.slot(feed.source_url), in_flight:
                    if stopping():
                        return None  # given back below, for another worker to take now
                    report = await _poll_feed(fetcher, writer, reader, settings, clock, feed)
                    held.discard(feed.url)
                    return report

            renewal = asyncio.create_task(_renew(store, writer, settings, clock, owner, held))
            tasks = {asyncio.create_task(poll(feed)) for feed in due}
            reports: list[FeedReport] = []
            try:
                # Each round ends at least one poll; claims stop when none is due or on stop.
                for _ in range(_MAX_ROUNDS):
                    if not tasks:
                        break
                    done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    reports += [r for r in (task.result() for task in done) if r is not None]
                    if due and not stopping() and len(held) <= settings.claim_batch // 2:
                        due = await claim(settings.claim_batch - len(held))
                        tasks |= {asyncio.create_task(poll(feed)) for feed in due}
            finally:
                for task in (*tasks, renewal):
                    task.cancel()
                await asyncio.gather(*tasks, renewal, return_exceptions=True)
        reports.sort(key=lambda report: report.url)
        return PollReport(feeds=tuple(reports), taken_over=taken_over)
    finally:
        try:
            if held:
                await writer.run(store.release_leases, sorted(held), owner)
        finally:
            writer.close()


class HostSlots:
    """At most ``per_host`` polls at once per host name: one busy host is never hammered.

    A semaphore per host, made when its first feed comes and kept for the cycle.
    """

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._slots: dict[str, asyncio.Semaphore] = {}

    def slot(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._slots:
            self._slots[host] = asyncio.Semaphore(self._per_host)
        return self._slots[host]


# A bound on a cycle's rounds: far above any feeds file's size, so only a bug meets it.
_MAX_ROUNDS = 1_000_000


async def _renew(
    store: PollStore,
    writer: OutcomeWriter,
    settings: PollSettings,
    clock: Clock,
    owner: str,
    held: set[str],
) -> None:
    """Renew this cycle's claims until it cancels this: a slow feed is never taken twice."""
    for _ in range(_MAX_ROUNDS):
        await asyncio.sleep(settings.renew_every)
        if held:
            await writer.run(store.renew_leases, sorted(held), clock(), settings.claim_lease, owner)


async def _poll_feed(
    fetcher: FeedFetcher,
    writer: OutcomeWriter,
    reader: FeedReader,
    settings: PollSettings,
    clock: Clock,
    feed: FeedState,
) -> FeedReport:
    request = FetchRequest(feed.source_url, etag=feed.etag, last_modified=feed.last_modified)
    started = time.monotonic()
    try:
        fetched = await fetcher.fetch(request)
    except FetchError as exc:
        failed = await _record_failure(writer, settings, clock, feed, exc, exc.status)
        return replace(failed, status=exc.status, fetch_seconds=time.monotonic() - started)
    fetch_seconds = time.monotonic() - started
    timed = partial(FeedReport, status=fetched.status, fetch_seconds=fetch_seconds)
    now = clock()
    if fetched.moved_to is not None:
        # Logged once: from now on the feed is fetched from there and no longer redirects.
        log.warning(
            "feed %s moved permanently to %s; update the feeds file",
            feed.url,
            shorten(fetched.moved_to),
            extra={"feed_url": feed.url},
        )
    fresh_for = freshness(now, fetched.headers)

    def next_at(gap: float | None, hint: float | None) -> datetime:
        """The next poll of a feed that answered: it follows the feed's pace (#11)."""
        seconds = poll_interval(
            settings.bounds,
            settings.poll_interval,
            configured=feed.interval,
            gap=gap,
            hints=(hint, fresh_for),
        )
        return next_poll_at(now, seconds, 0, settings.jitter())

    success = partial(
        PollOutcome,
        feed_url=feed.url,
        polled_at=now,
        status=fetched.status,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        moved_to=fetched.moved_to,
    )

    def unchanged(digest: str | None) -> PollOutcome:
        """Nothing new to learn the pace from: the stored pace sets the next poll."""
        return success(
            next_poll_at=next_at(feed.publish_gap, feed.refresh_hint), body_digest=digest
        )

    if fetched.body is None:
        await writer.write(unchanged(feed.body_digest))
        return timed(feed.url, "not-modified")
    digest = body_digest(fetched.body)
    if digest == feed.body_digest:
        await writer.write(unchanged(digest))
        return timed(feed.url, "unchanged")
    try:
        parsed, matched = await reader.read(
            fetched.body,
            url=feed.url,
            headers=dict(fetched.headers),
            fetched_at=now,
            feed_name=feed.name,
            feed_tags=feed.tags,
        )
    except FeedParseError as exc:  # not a feed, over its parse budget, or its worker died
        failed = await _record_failure(writer, settings, clock, feed, exc, fetched.status)
        return replace(failed, status=fetched.status, fetch_seconds=fetch_seconds)
    for warning in parsed.warnings:
        log.warning("feed %s: %s", feed.url, warning, extra={"feed_url": feed.url})
    first_poll = feed.first_polled_at is None
    # Too few dated items keep the pace known; a document without a ttl drops its hint (0).
    gap = publish_gap(article.published for article, _ in matched if article.dated)
    hint = parsed.refresh_hint or 0.0
    outcome = success(
        next_poll_at=next_at(feed.publish_gap if gap is None else gap, hint),
        body_digest=digest,
        articles=matched,
        alert_since=alert_since(now, first_poll, settings.alert_window_hours),
        publish_gap=gap,
        refresh_hint=hint,
    )
    saved = await writer.write(outcome)
    return timed(
        feed.url,
        "updated",
        new_articles=saved.new_articles,
        new_matches=saved.new_matches,
        new_alerts=saved.new_deliveries,
        held_back=saved.held_back,
        warnings=parsed.warnings,
    )


async def _record_failure(
    writer: OutcomeWriter,
    settings: PollSettings,
    clock: Clock,
    feed: FeedState,
    error: FetchError | FeedParseError,
    status: int | None,
) -> FeedReport:
    """Record a failed poll; the host's Retry-After, 410 or 404s decide when to poll again."""
    now = clock()
    errors = feed.error_count + 1
    interval = feed.interval or settings.poll_interval
    message = shorten(error.message)
    not_found = feed.not_found_count + 1 if status == 404 else 0
    attention = attention_reason(status, not_found)
    retry_after = retry_after_at(now, error.retry_after if isinstance(error, FetchError) else None)
    retry_at = next_poll_at(
        now,
        interval,
        errors,
        settings.jitter(),
        retry_after=retry_after,
        attention=attention is not None or feed.attention is not None,
    )
    # One line per failure; the first that marks the feed says so, later ones only repeat it.
    newly = f"; it now needs attention: {attention}" if attention and not feed.attention else ""
    log.warning(
        "feed %s failed (%d in a row), retry at %s: %s%s",
        feed.url,
        errors,
        retry_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        message,
        newly,
        extra={"feed_url": feed.url},
    )
    outcome = PollOutcome(
        feed_url=feed.url,
        polled_at=now,
        next_poll_at=retry_at,
        status=status,
        error=message,
        not_found_count=not_found,
        attention=attention,
    )
    await writer.write(outcome)
    return FeedReport(feed.url, "failed", error=message)


# Bounds of one delivery run: it drains the queue, but never for ever.
DELIVERY_RUN_LIMIT = 600.0  # seconds
MAX_RUN_SENDS = 20_000  # sends and claims
# A run waits out a pause this long when Slack named it (Retry-After); a longer one, or a
# backoff after an outage, is left to the run that comes after it.
MAX_HELD_PAUSE = 30.0  # seconds
# More alerts than this due for one channel in one run go out as grouped messages.
GROUP_ABOVE = 10


def deliver_pending(
    store: DeliveryStore,
    sender: AlertSender,
    *,
    default_channel: str | None,
    batch: int = 50,
    lease: timedelta = timedelta(minutes=5),
    clock: Clock = utc_now,
    sleep: Callable[[float], None] = time.sleep,
    pacing: Pacing = SLACK_PACING,
    paces: dict[str, datetime] | None = None,
    time_limit: float = DELIVERY_RUN_LIMIT,
    group_above: int = GROUP_ABOVE,
    render: AlertRenderer = render_alert,
    severity_channels: Mapping[str, str] | None = None,
) -> DeliveryReport:
    """Send every due alert, batch after batch, each channel paced at Slack's rate (#9).

    Within a channel alerts go in the order the store claimed them (published, then
    found). A retryable failure pauses only that channel: the alerts behind it wait in
    order and go once it opens, in this run if their claim lasts until then, else they
    are released to that time. ``paces`` keeps each channel's pace across runs.

    An alert whose rules name no channel goes to the channel of its most severe rule's
    severity in ``severity_channels``, else to ``default_channel``.

    A channel with more than ``group_above`` alerts due (0: never) gets grouped messages,
    one linked line per alert, for the rest of the run; each alert is marked sent with
    the grouped message's ``ts``.
    """
    paces = {} if paces is None else paces
    route = partial(delivery_channel, default=default_channel, by_severity=severity_channels or {})
    started = clock()
    stop_at = started + timedelta(seconds=time_limit)
    # The claim outlasts the time a full batch to one channel takes at the pace.
    claim_lease = lease + timedelta(seconds=batch * pacing.interval)
    queues: dict[str, deque[PendingDelivery]] = {}
    held_until: dict[int, datetime] = {}  # delivery id -> end of its claim
    sent = failed = 0
    waiting: set[int] = set()  # still pending, to be retried: failed for now, or released
    grouping: set[str] = set()  # channels whose alerts go in grouped messages this run
    errors: list[str] = []
    more = True
    for _ in range(MAX_RUN_SENDS):
        queued = sum(len(queue) for queue in queues.values())
        if (more and queued <= batch // 2) or not queues:
            now = clock()
            claimed = (
                store.claim_deliveries(now, claim_lease, batch - queued) if now < stop_at else []
            )
            more = len(claimed) == batch - queued
            for delivery in claimed:
                queues.setdefault(route(delivery), deque()).append(delivery)
                held_until[delivery.id] = now + claim_lease
            if not queues:
                break
        now = clock()
        channel = min(queues, key=lambda c: send_at(pacing, paces.get(c), now))
        at = send_at(pacing, paces.get(channel), now)
        if at > stop_at:
            break
        wait = (at - now).total_seconds()
        if wait > 0:
            sleep(wait)
        queue = queues[channel]
        if group_above and (channel in grouping or len(queue) > group_above):
            grouping.add(channel)
            if more and len(queue) < MAX_GROUP:
                # Claimed in published order, so other channels' alerts may come too.
                more = _claim_more(
                    store, queues, held_until, clock(), claim_lease, MAX_GROUP - len(queue), route
                )
        parcel, message = _next_parcel(queue, channel in grouping, render)
        try:
            reference = sender.send(channel, message)
        except DeliveryError as exc:
            text = str(exc)
            errors.append(text)
            if exc.permanent:
                for delivery in parcel:
                    store.mark_failed(delivery.id, clock(), text, None)
                    log.error(
                        "alert %d to %s failed permanently: %s",
                        delivery.id,
                        channel,
                        text,
                        extra=_log_context(delivery),
                    )
                    failed += 1
                    waiting.discard(delivery.id)
            else:
                wait_for = exc.retry_after if isinstance(exc, RetryLaterError) else None
                retry_at = delivery_retry_at(clock(), parcel[0].attempts, wait_for)
                for delivery in reversed(parcel):
                    store.mark_failed(delivery.id, clock(), text, retry_at)
                    log.warning(
                        "alert %d to %s will be retried at %s: %s",
                        delivery.id,
                        channel,
                        retry_at.isoformat(timespec="seconds"),
                        text,
                        extra=_log_context(delivery),
                    )
                    waiting.add(delivery.id)
                    queue.appendleft(replace(delivery, attempts=delivery.attempts + 1))
                    held_until[delivery.id] = retry_at  # mark_failed made it due then
                paces[channel] = after_pause(pacing, paces.get(channel), retry_at)
                hold = wait_for is not None and wait_for <= MAX_HELD_PAUSE
                waiting.update(_release_unheld(store, queue, held_until, retry_at, hold))
        else:
            for delivery in parcel:
                store.mark_delivered(delivery.id, clock(), reference)
                waiting.discard(delivery.id)
            paces[channel] = after_send(pacing, paces.get(channel), clock())
            sent += len(parcel)
            if len(parcel) > 1:
                log.info("sent %d alerts to %s as one grouped message", len(parcel), channel)
        if not queue:
            del queues[channel]
    # What is still queued (the run's limit): due again when its channel may send.
    for channel, queue in queues.items():
        ids = [delivery.id for delivery in queue]
        store.release_deliveries(ids, send_at(pacing, paces.get(channel), clock()))
        waiting.update(ids)
    return DeliveryReport(sent=sent, retrying=len(waiting), failed=failed, errors=tuple(errors))


def delivery_channel(
    delivery: PendingDelivery, *, default: str | None, by_severity: Mapping[str, str]
) -> str:
    """Where an alert goes: the channel its rules named, else the channel of its most severe
    rule's severity, else the default channel ("" if none: the sender says so)."""
    if delivery.channel:
        return delivery.channel
    for severity in reversed(SEVERITIES):
        if severity in by_severity and any(
            match.severity.strip().lower() == severity for match in delivery.matches
        ):
            return by_severity[severity]
    return default or ""


def _claim_more(
    store: DeliveryStore,
    queues: dict[str, deque[PendingDelivery]],
    held_until: dict[int, datetime],
    now: datetime,
    lease: timedelta,
    limit: int,
    route: Callable[[PendingDelivery], str],
) -> bool:
    """Claim up to ``limit`` more due alerts into their channels' queues; True if more are due."""
    claimed = store.claim_deliveries(now, lease, limit)
    for delivery in claimed:
        queues.setdefault(route(delivery), deque()).append(delivery)
        held_until[delivery.id] = now + lease
    return len(claimed) == limit


def _next_parcel(
    queue: deque[PendingDelivery], grouped: bool, render: AlertRenderer
) -> tuple[list[PendingDelivery], SlackMessage]:
    """The alerts the next message carries, from the head of ``queue``, and that message."""
    if grouped and len(queue) > 1:
        message, count = render_group(
            [(delivery.article, delivery.matches) for delivery in islice(queue, MAX_GROUP)]
        )
        return [queue.popleft() for _ in range(count)], message
    delivery = queue.popleft()
    return [delivery], render(delivery.article, delivery.matches)


def _release_unheld(
    store: DeliveryStore,
    queue: deque[PendingDelivery],
    held_until: dict[int, datetime],
    retry_at: datetime,
    hold: bool,
) -> list[int]:
    """A paused channel keeps its queue for a short pause its claims outlast, else releases it.

    Released alerts are due when the channel opens, so they keep their place; the failed
    one (the head) is already due then.
    """
    behind = [delivery.id for delivery in list(queue)[1:]]
    if hold and all(held_until[id_] > retry_at for id_ in behind):
        return []
    if behind:
        store.release_deliveries(behind, retry_at)
    queue.clear()
    return behind


def _log_context(delivery: PendingDelivery) -> dict[str, object]:
    """The log fields of a line about one alert; a rule id only when it has one rule."""
    context: dict[str, object] = {"delivery_id": delivery.id, "feed_url": delivery.article.feed_url}
    rules = {match.rule_id for match in delivery.matches}
    if len(rules) == 1:
        context["rule_id"] = rules.pop()
    return context
