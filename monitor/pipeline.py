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
from functools import lru_cache, partial
from typing import TypeVar
from urllib.parse import urlsplit

from monitor.errors import (
    DeliveryError,
    FeedParseError,
    FetchError,
    RetryLaterError,
    UncertainDeliveryError,
    shorten,
)
from monitor.feeds.fetch import FetchOptions, FetchRequest
from monitor.feeds.parse import body_digest
from monitor.model import SEVERITIES
from monitor.notify.base import AlertRenderer, AlertSender
from monitor.notify.render import (
    MAX_GROUP,
    SlackMessage,
    render_alert,
    render_group,
    render_reply,
)
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
from monitor.store.store import FeedState, PendingDelivery, PollOutcome, PollSaved, ThreadParent

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
    uncertain: int = 0  # sends that may have reached Slack unanswered (incl. a crash's)
    expired: int = 0  # too old, or their rule no longer sends there: not sent


@dataclass(frozen=True, slots=True)
class Expiry:
    """What makes a queued alert stale: its age, and the rules and channels live now."""

    max_age: timedelta
    routes: Mapping[str, frozenset[str]] | None = None  # rule id -> its channels; None: unchecked


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
        host = _host(url)
        if host not in self._slots:
            self._slots[host] = asyncio.Semaphore(self._per_host)
        return self._slots[host]


@lru_cache(maxsize=2**16)  # every cycle polls the same feed URLs again
def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


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
    expiry: Expiry | None = None,
) -> DeliveryReport:
    """Send every due alert, batch after batch, each channel paced at Slack's rate (#9).

    Within a channel alerts go in the order the store claimed them (published, then
    found). A retryable failure pauses only that channel: the alerts behind it wait in
    order and go once it opens, in this run if their claim lasts until then, else they
    are released to that time. ``paces`` keeps each channel's pace across runs.

    An alert whose rules name no channel goes to the channel of its most severe rule's
    severity in ``severity_channels``, else to ``default_channel``.

    A channel with more than ``group_above`` alerts due (0: never) gets grouped messages,
    one linked line per story, for the rest of the run; each alert is marked sent with
    the grouped message's ``ts``. A story's later articles reply in its first alert's
    thread (#10).

    A send that may have reached Slack unanswered (or that a crash interrupted) is retried
    once after a delay and then given up, so Slack holds at most one duplicate of it;
    alerts that ``expiry`` finds stale are expired, not sent.
    """
    paces = {} if paces is None else paces
    route = partial(delivery_channel, default=default_channel, by_severity=severity_channels or {})
    started = clock()
    stop_at = started + timedelta(seconds=time_limit)
    # The claim outlasts the time a full batch to one channel takes at the pace.
    claim_lease = lease + timedelta(seconds=batch * pacing.interval)
    queues: dict[str, deque[PendingDelivery]] = {}
    held_until: dict[int, datetime] = {}  # delivery id -> end of its claim
    paused: dict[str, datetime] = {}  # channel -> when it opens again, its queue released
    sent = failed = uncertain = expired = 0
    waiting: set[int] = set()  # still pending, to be retried: failed for now, or released
    grouping: set[str] = set()  # channels whose alerts go in grouped messages this run
    errors: list[str] = []
    threads = _Threads(store, waiting)

    def take(limit: int) -> tuple[bool, bool]:
        """Claim up to ``limit`` due alerts into their channels' queues, expiring the stale
        and holding back those behind a paused channel: (more are due, some were held)."""
        nonlocal uncertain, failed, expired
        now = clock()
        settled = store.settle_interrupted(now)
        uncertain += settled.uncertain + settled.failed
        failed += settled.failed
        holding = [delivery.id for queue in queues.values() for delivery in queue]
        claimed = store.claim_deliveries(now, claim_lease, limit, holding)
        behind: dict[str, list[int]] = {}
        for delivery in claimed:
            reason = stale_reason(delivery, now, expiry)
            if reason is not None:
                store.mark_expired(delivery.id, now, reason)
                log.warning(
                    "alert %d to %s expired: %s",
                    delivery.id,
                    delivery.channel or "the default channel",
                    reason,
                    extra=_log_context(delivery),
                )
                expired += 1
                continue
            channel = route(delivery)
            if paused.get(channel, now) > now:  # newer alerts wait behind the paused ones
                behind.setdefault(channel, []).append(delivery.id)
                continue
            queues.setdefault(channel, deque()).append(delivery)
            held_until[delivery.id] = now + claim_lease
        for channel, ids in behind.items():
            store.release_deliveries(ids, paused[channel])
            waiting.update(ids)
        return len(claimed) == limit, bool(behind)

    more = True
    for _ in range(MAX_RUN_SENDS):
        queued = sum(len(queue) for queue in queues.values())
        if (more and queued <= batch // 2) or not queues:
            held_back = False
            if clock() < stop_at:
                more, held_back = take(batch - queued)
            else:
                more = False
            if not queues:
                if more and held_back:
                    continue  # all it claimed waits behind a pause: claim what is after
                break
        now = clock()
        channel = min(queues, key=lambda c: send_at(pacing, paces.get(c), now))
        at = send_at(pacing, paces.get(channel), now)
        if at > stop_at:
            break
        queue = queues[channel]
        ready = threads.resolve(queue[0], held_until, now)
        if ready is None:  # its story's first alert is not out yet: it waits for it
            queue.popleft()
            if not queue:
                del queues[channel]
            continue
        queue[0] = ready
        wait = (at - now).total_seconds()
        if wait > 0:
            sleep(wait)
        if group_above and (channel in grouping or len(queue) > group_above):
            grouping.add(channel)
            if more and len(queue) < MAX_GROUP:
                # Claimed in published order, so other channels' alerts may come too.
                more, _ = take(MAX_GROUP - len(queue))
        parcel, message = _next_parcel(queue, channel in grouping, render, threads)
        store.start_send([delivery.id for delivery in parcel], clock())
        try:
            reference = sender.send(channel, message)
        except DeliveryError as exc:
            text = str(exc)
            errors.append(text)
            wait_for = exc.retry_after if isinstance(exc, RetryLaterError) else None
            retry_at = delivery_retry_at(clock(), parcel[0].attempts, wait_for)
            replies: list[PendingDelivery] = []  # of alerts given up: the next takes the place
            again: list[PendingDelivery] = []
            for delivery in parcel:
                if isinstance(exc, UncertainDeliveryError):
                    uncertain += 1
                    gave_up = store.mark_uncertain(delivery.id, clock(), text, retry_at)
                    if gave_up:
                        log.error(
                            "alert %d to %s given up: %s; it may be in the channel twice",
                            delivery.id,
                            channel,
                            text,
                            extra=_log_context(delivery),
                        )
                elif exc.permanent:
                    gave_up = True
                    store.mark_failed(delivery.id, clock(), text, None)
                    log.error(
                        "alert %d to %s failed permanently: %s",
                        delivery.id,
                        channel,
                        text,
                        extra=_log_context(delivery),
                    )
                else:
                    gave_up = False
                    store.mark_failed(delivery.id, clock(), text, retry_at)
                if gave_up:
                    failed += 1
                    waiting.discard(delivery.id)
                    replies += threads.failed(delivery.id)
                    continue
                log.warning(
                    "alert %d to %s will be retried at %s: %s",
                    delivery.id,
                    channel,
                    retry_at.isoformat(timespec="seconds"),
                    text,
                    extra=_log_context(delivery),
                )
                waiting.add(delivery.id)
                threads.release(delivery.id, retry_at)
                again.append(replace(delivery, attempts=delivery.attempts + 1))
                held_until[delivery.id] = retry_at  # marking it made it due then
            queue.extendleft(reversed(replies + again))
            if again:
                paces[channel] = after_pause(pacing, paces.get(channel), retry_at)
                hold = wait_for is not None and wait_for <= MAX_HELD_PAUSE
                waiting.update(_release_unheld(store, queue, held_until, retry_at, hold))
                if not queue:
                    paused[channel] = retry_at
                    store.pause_channel(again[0].channel, retry_at)
        else:
            replies = []
            for delivery in parcel:
                store.mark_delivered(delivery.id, clock(), reference)
                replies += threads.sent(delivery.id, reference)
                waiting.discard(delivery.id)
            queue.extendleft(reversed(replies))
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
    threads.release_all(clock())
    return DeliveryReport(
        sent=sent,
        retrying=len(waiting),
        failed=failed,
        errors=tuple(errors),
        uncertain=uncertain,
        expired=expired,
    )


def stale_reason(delivery: PendingDelivery, now: datetime, expiry: Expiry | None) -> str | None:
    """Why a queued alert must not go out any more, or None: too old, or no rule sends it there."""
    if expiry is None:
        return None
    routes = expiry.routes
    gone = _unrouted(delivery, routes) if routes is not None and delivery.matches else None
    if gone is not None:
        return gone
    if delivery.created_at is not None and now - delivery.created_at > expiry.max_age:
        return (
            f"older than {format_duration(expiry.max_age)} "
            f"(found {delivery.created_at:%Y-%m-%d %H:%M} UTC, MONITOR_DELIVERY_MAX_AGE); not sent"
        )
    return None


def _unrouted(delivery: PendingDelivery, routes: Mapping[str, frozenset[str]]) -> str | None:
    """Why no live rule sends this alert to its channel any more; None if one does."""
    channel = delivery.channel.removeprefix("#")
    rules = list(dict.fromkeys(match.rule_id for match in delivery.matches))
    if any(channel in {c.removeprefix("#") for c in routes.get(rule, ())} for rule in rules):
        return None
    gone = [rule for rule in rules if rule not in routes]
    if len(gone) == len(rules):
        return f"rule {', '.join(gone)} is no longer loaded; not sent"
    where = delivery.channel or "the default channel"
    moved = ", ".join(rule for rule in rules if rule in routes)
    return f"rule {moved} no longer names {where}; not sent"


def format_duration(span: timedelta) -> str:
    """``24h``, ``90m``, ``2d``: a duration as a setting would be written."""
    seconds = int(span.total_seconds())
    if seconds >= 2 * 86400 and seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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


def _next_parcel(
    queue: deque[PendingDelivery], grouped: bool, render: AlertRenderer, threads: _Threads
) -> tuple[list[PendingDelivery], SlackMessage]:
    """The alerts the next message carries, from the head of ``queue``, and that message.

    A grouped message lists each story once: a later article of a story in the group, or
    of one already out, is left in the queue, behind the alerts that did not fit, to reply
    in its story's thread.
    """
    if grouped and len(queue) > 1 and queue[0].thread is None:
        taken: list[PendingDelivery] = []
        replies: list[PendingDelivery] = []
        # A story's first alert may come after a copy published earlier: it takes the line.
        queued = {delivery.id for delivery in queue}
        for _ in range(len(queue)):
            if len(taken) == MAX_GROUP:
                break
            delivery = queue.popleft()
            story = delivery.thread
            if story is not None and (threads.is_out(story) or story.id in queued):
                replies.append(delivery)
            else:
                taken.append(delivery)
        message, count = render_group([(d.article, d.matches) for d in taken])
        queue.extendleft(reversed(taken[count:] + replies))
        return taken[:count], message
    delivery = queue.popleft()
    return [delivery], threads.message(delivery, render)


# How long a story's later alert waits, at most, for a first alert another run holds.
THREAD_WAIT = timedelta(seconds=30)


class _Threads:
    """One delivery run's threading (#10): a story's later alerts reply to its first one.

    A reply waits for its first alert: parked in this run when the run holds that alert,
    else handed back until it may be out. If the first alert fails for good, the next
    of the story to come up becomes its alert, and the others reply to that one.
    """

    def __init__(self, store: DeliveryStore, waiting: set[int]) -> None:
        self._store = store
        self._waiting = waiting  # the run's "to retry" set
        self._sent: dict[int, str | None] = {}  # delivery id -> Slack ts, sent in this run
        self._parked: dict[int, list[PendingDelivery]] = {}  # first alert's id -> replies
        # A first alert that failed for good -> the one that took its place (None: none yet).
        self._replaced: dict[int, ThreadParent | None] = {}

    def resolve(
        self, delivery: PendingDelivery, held_until: dict[int, datetime], now: datetime
    ) -> PendingDelivery | None:
        """``delivery`` as it goes now (an alert, or a reply to a sent one), or None when it
        must wait for its story's first alert: then it is parked or handed back here."""
        parent, failed = delivery.thread, None
        for _ in range(len(self._replaced) + 1):  # follows a chain of failed alerts
            if parent is None or parent.id not in self._replaced:
                break
            failed, parent = parent.id, self._replaced[parent.id]
        if parent is None:
            if failed is not None:  # the story's alert failed for good: this one is it now
                self._replaced[failed] = ThreadParent(delivery.id, "pending", None, now)
            return replace(delivery, thread=None)
        if parent.status == "sent" or parent.id in self._sent:
            return replace(delivery, thread=parent)
        if parent.id in held_until:  # this run sends it: go right after it
            self._parked.setdefault(parent.id, []).append(delivery)
            return None
        # Another run holds it or it waits for a retry: look again when it may be out.
        again = max(now + timedelta(seconds=1), min(parent.next_attempt_at, now + THREAD_WAIT))
        self._store.release_deliveries([delivery.id], again)
        self._waiting.add(delivery.id)
        return None

    def is_out(self, parent: ThreadParent) -> bool:
        """Whether a story's first alert was sent (in this run or before)."""
        return parent.status == "sent" or parent.id in self._sent

    def message(self, delivery: PendingDelivery, render: AlertRenderer) -> SlackMessage:
        parent = delivery.thread
        if parent is None:
            return render(delivery.article, delivery.matches)
        return render_reply(delivery.article, self._sent.get(parent.id, parent.reference))

    def sent(self, delivery_id: int, reference: str | None) -> list[PendingDelivery]:
        """The replies that waited for this alert, to send next."""
        self._sent[delivery_id] = reference
        return self._parked.pop(delivery_id, [])

    def failed(self, delivery_id: int) -> list[PendingDelivery]:
        """This alert failed for good: the replies that waited for it, to send next (the
        first of them, or of the story's later ones, takes its place)."""
        self._replaced[delivery_id] = None
        return self._parked.pop(delivery_id, [])

    def release(self, delivery_id: int, at: datetime) -> None:
        """This alert will be retried at ``at``: its replies wait until then too."""
        ids = [reply.id for reply in self._parked.pop(delivery_id, [])]
        if ids:
            self._store.release_deliveries(ids, at)
            self._waiting.update(ids)

    def release_all(self, at: datetime) -> None:
        """End of the run: replies still waiting are due again with their first alert."""
        for parent_id in list(self._parked):
            self.release(parent_id, at)


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
