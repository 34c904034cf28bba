"""The Store on a real SQLite file and a real PostgreSQL database (`database_url` runs both)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from monitor.errors import MAX_MESSAGE, StoreError
from monitor.model import Article, FeedSpec, Match, TermHit
from monitor.store import (
    DEFAULT_CHANNEL,
    BackfillSaved,
    FeedState,
    PollOutcome,
    PollSaved,
    Store,
    StoredMatch,
)
from monitor.store.engine import parse_url
from tests.support.pg import PostgresHandle

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)
FEED_A = FeedSpec("https://a.example/feed", "Agency A", ("wire", "en"), 600.0)
FEED_B = FeedSpec("https://b.example/rss", "Blog B", ())


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store.open(database_url)
    store.upgrade()
    store.sync_feeds([FEED_A, FEED_B], NOW)
    yield store
    store.close()


def article(entry_id: str, feed: FeedSpec = FEED_A, **changes: object) -> Article:
    values: dict[str, object] = {
        "feed_url": feed.url,
        "entry_id": entry_id,
        "title": f"Title {entry_id}",
        "published": NOW - timedelta(hours=1),
        "link": f"https://news.example/{entry_id}",
        "feed_name": feed.name,
        "feed_tags": feed.tags,
    }
    values.update(changes)
    return Article(**values)  # type: ignore[arg-type]


def match(rule_id: str, channel: str | None = "#news", term: str = "flood") -> Match:
    hit = TermHit(term=term, field="title", text=term.title(), start=0, end=len(term))
    return Match(rule_id, f"Rule {rule_id}", "high", channel, (hit,))


def poll(
    feed: FeedSpec,
    *items: tuple[Article, list[Match]],
    at: datetime = NOW,
    **changes: object,
) -> PollOutcome:
    values: dict[str, object] = {
        "feed_url": feed.url,
        "polled_at": at,
        "next_poll_at": at + timedelta(minutes=10),
        "status": 200,
        "articles": items,
    }
    values.update(changes)
    return PollOutcome(**values)  # type: ignore[arg-type]


def state(store: Store, url: str) -> FeedState:
    return next(feed for feed in store.feeds() if feed.url == url)


# -- round trips ----------------------------------------------------------------------------


def test_article_and_match_round_trip(store: Store) -> None:
    full = article(
        "urn:1",
        summary="A <b>summary</b> — ünïcode",
        content="Long content\nwith lines",
        authors=("Ann", "Bob"),
        categories=("Weather", "Europe"),
        language="en",
        dated=False,
        published=datetime(2025, 3, 1, 13, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
    )
    rich = Match(
        "floods",
        "Floods in Europe",
        "critical",
        "#alerts",
        (
            TermHit("flood*", "title", "Flooding", 0, 8, list_name="disasters"),
            TermHit("rhine", "content", "Rhine", 10, 15),
        ),
    )
    assert store.record_poll(poll(FEED_A, (full, [rich]))) == PollSaved(1, 1, 1)

    assert store.articles() == [full]
    assert store.articles()[0].published.tzinfo == UTC
    [pending] = store.claim_deliveries(NOW, LEASE, 10)
    assert (pending.channel, pending.attempts, pending.article, pending.matches) == (
        "#alerts",
        0,
        full,
        (rich,),
    )
    claimed_until = NOW + LEASE
    assert store.recent_matches() == [
        StoredMatch(full, rich, NOW, "pending", next_attempt_at=claimed_until)
    ]


def test_feed_state_round_trip(store: Store) -> None:
    assert store.feeds() == [
        FeedState(
            url=FEED_A.url, name="Agency A", tags=("wire", "en"), interval=600.0,
            etag=None, last_modified=None, body_digest=None, error_count=0, last_error=None,
            last_status=None, last_polled_at=None, last_success_at=None, next_poll_at=None,
            first_polled_at=None, active=True,
        ),
        FeedState(
            url=FEED_B.url, name="Blog B", tags=(), interval=None,
            etag=None, last_modified=None, body_digest=None, error_count=0, last_error=None,
            last_status=None, last_polled_at=None, last_success_at=None, next_poll_at=None,
            first_polled_at=None, active=True,
        ),
    ]  # fmt: skip


def test_the_feed_tally_counts_what_feed_health_says(store: Store) -> None:
    feed_c = FeedSpec("https://c.example/feed", "C", ())
    feed_d = FeedSpec("https://d.example/feed", "D", ())
    feed_e = FeedSpec("https://e.example/feed", "E", ())
    store.sync_feeds([FEED_A, FEED_B, feed_c, feed_d, feed_e], NOW)
    store.record_poll(poll(FEED_A, moved_to="https://a2.example/feed"))  # ok, moved
    store.record_poll(poll(FEED_B, status=503, error="HTTP 503"))  # failing
    store.record_poll(poll(feed_c, status=410, error="HTTP 410", attention="HTTP 410 Gone"))
    # feed_d never polled: new
    store.sync_feeds([FEED_A, FEED_B, feed_c, feed_d], NOW)  # feed_e removed: not counted
    tally = store.tally_feeds()
    active = [feed for feed in store.feeds() if feed.active]
    assert tally.by_health == {"ok": 1, "failing": 1, "attention": 1, "new": 1}
    assert tally.by_health == {f.health: sum(g.health == f.health for g in active) for f in active}
    assert tally.moved == 1


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        store.record_poll(poll(FEED_A, (article("1", published=datetime(2025, 1, 1)), [])))


# -- deduplication --------------------------------------------------------------------------


def test_recording_the_same_articles_again_adds_nothing(store: Store) -> None:
    items = [(article(str(n)), [match("r1")]) for n in range(3)]
    assert store.record_poll(poll(FEED_A, *items)) == PollSaved(3, 3, 3)
    again = poll(FEED_A, *reversed(items), at=NOW + timedelta(minutes=10))
    assert store.record_poll(again) == PollSaved(0, 0, 0)
    assert sorted(a.entry_id for a in store.articles()) == ["0", "1", "2"]
    assert store.delivery_counts() == {"pending": 3}


def test_a_changed_title_with_the_same_entry_id_is_not_new(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1")])))
    edited = article("1", title="Edited headline", link="https://news.example/1-edited")
    assert store.record_poll(poll(FEED_A, (edited, [match("r1")]))) == PollSaved(0, 0, 0)


def test_same_link_in_another_feed_is_not_stored_again(store: Store) -> None:
    first = article("a-1", link="https://news.example/story")
    store.record_poll(poll(FEED_A, (first, [match("r1")])))
    syndicated = article("b-99", FEED_B, link="https://news.example/story")
    assert store.record_poll(poll(FEED_B, (syndicated, [match("r1")]))) == PollSaved(0, 0, 0)
    assert store.articles() == [first]


def test_articles_without_link_dedupe_by_entry_id_only(store: Store) -> None:
    one = article("x", link=None)
    two = article("y", link=None)
    assert store.record_poll(poll(FEED_A, (one, []), (two, []))) == PollSaved(2, 0, 0)
    other_feed = article("x", FEED_B, link=None)
    assert store.record_poll(poll(FEED_B, (other_feed, []))) == PollSaved(1, 0, 0)


def test_a_guid_repeated_inside_one_document_is_stored_once(store: Store) -> None:
    first = article("dup", title="First copy")
    second = article("dup", title="Second copy", link="https://news.example/other")
    saved = store.record_poll(poll(FEED_A, (first, [match("r1")]), (second, [match("r1")])))
    assert saved == PollSaved(1, 1, 1)
    assert store.articles() == [first]


def test_concurrent_record_poll_of_one_article_stores_and_alerts_once(store: Store) -> None:
    rounds = 15
    errors: list[BaseException] = []
    results: list[PollSaved] = []
    barrier = threading.Barrier(2, timeout=30)

    def worker(feed: FeedSpec) -> None:
        try:
            for n in range(rounds):
                item = article(f"{feed.name}-{n}", feed, link=f"https://news.example/c{n}")
                barrier.wait()
                results.append(store.record_poll(poll(feed, (item, [match("r1")]))))
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)
            barrier.abort()

    # Same feed (same entry id) and another feed (same canonical link) race each round.
    threads = [threading.Thread(target=worker, args=(FEED_A,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(results) == 2 * rounds
    assert sum(r.new_articles for r in results) == rounds
    assert sum(r.new_deliveries for r in results) == rounds

    results.clear()
    threads = [threading.Thread(target=worker, args=(feed,)) for feed in (FEED_A, FEED_B)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sum(r.new_articles for r in results) == 0  # every link c0..cN is already stored
    assert len(store.articles()) == rounds
    assert store.delivery_counts()["pending"] == rounds


def test_concurrent_cross_feed_race_on_new_links_stores_each_once(store: Store) -> None:
    rounds = 15
    errors: list[BaseException] = []
    results: list[PollSaved] = []
    barrier = threading.Barrier(2, timeout=30)

    def worker(feed: FeedSpec) -> None:
        try:
            for n in range(rounds):
                items = [
                    (article(f"{feed.name}-{n}-{k}", feed, link=f"https://x.example/{n}/{k}"),
                     [match("r1")])
                    for k in (range(3) if feed is FEED_A else reversed(range(3)))
                ]  # fmt: skip
                barrier.wait()
                results.append(store.record_poll(poll(feed, *items)))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=worker, args=(feed,)) for feed in (FEED_A, FEED_B)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sum(r.new_articles for r in results) == 3 * rounds
    assert store.delivery_counts()["pending"] == 3 * rounds


# -- matches and deliveries -----------------------------------------------------------------


def test_alert_since_stores_matches_but_creates_no_delivery(store: Store) -> None:
    old = article("old", published=NOW - timedelta(days=3))
    fresh = article("fresh", published=NOW - timedelta(hours=2))
    saved = store.record_poll(
        poll(
            FEED_A,
            (old, [match("r1")]),
            (fresh, [match("r1")]),
            alert_since=NOW - timedelta(hours=24),
        )
    )
    assert saved == PollSaved(2, 2, 1, held_back=1)
    by_entry = {m.article.entry_id: m.delivery_status for m in store.recent_matches()}
    assert by_entry == {"old": None, "fresh": "pending"}
    assert [d.article for d in store.claim_deliveries(NOW, LEASE, 10)] == [fresh]


def test_one_delivery_per_channel(store: Store) -> None:
    shared_1, shared_2 = match("r1", "#news"), match("r2", "#news", term="storm")
    other, nowhere = match("r3", "#ops"), match("r4", None)
    saved = store.record_poll(poll(FEED_A, (article("1"), [shared_1, shared_2, other, nowhere])))
    assert saved == PollSaved(1, 4, 3)
    claimed = {d.channel: d.matches for d in store.claim_deliveries(NOW, LEASE, 10)}
    assert claimed == {"#news": (shared_1, shared_2), "#ops": (other,), DEFAULT_CHANNEL: (nowhere,)}
    assert {m.match.rule_id: m.delivery_status for m in store.recent_matches()} == dict.fromkeys(
        ("r1", "r2", "r3", "r4"), "pending"
    )


def test_claim_deliveries_leases_and_orders_oldest_first(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("late"), [match("r1")]), at=NOW))
    store.record_poll(
        poll(FEED_B, (article("early", FEED_B), [match("r1")]), at=NOW - timedelta(1))
    )

    first = store.claim_deliveries(NOW, LEASE, 1)
    assert [d.article.entry_id for d in first] == ["early"]
    # The later one to the same channel waits while the earlier is out: never overtakes it.
    assert store.claim_deliveries(NOW, LEASE, 10) == []
    assert store.claim_deliveries(NOW + LEASE - timedelta(seconds=1), LEASE, 10) == []
    again = store.claim_deliveries(NOW + LEASE, LEASE, 10)
    assert [d.article.entry_id for d in again] == ["early", "late"]


def test_mark_delivered(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1")])))
    [pending] = store.claim_deliveries(NOW, LEASE, 10)
    store.mark_delivered(pending.id, NOW, "1700000000.000100")
    assert store.delivery_counts() == {"sent": 1}
    assert store.claim_deliveries(NOW + timedelta(days=1), LEASE, 10) == []
    assert store.recent_matches()[0].delivery_status == "sent"
    with pytest.raises(StoreError, match="delivery 9999 does not exist"):
        store.mark_delivered(9999, NOW, None)


def test_mark_failed_with_retry_keeps_it_pending_until_retry_at(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1")])))
    [pending] = store.claim_deliveries(NOW, LEASE, 10)
    retry_at = NOW + timedelta(minutes=30)
    store.mark_failed(pending.id, NOW, "ratelimited", retry_at)
    assert store.delivery_counts() == {"pending": 1}
    assert store.claim_deliveries(retry_at - timedelta(seconds=1), LEASE, 10) == []
    [retried] = store.claim_deliveries(retry_at, LEASE, 10)
    assert (retried.id, retried.attempts) == (pending.id, 1)


def test_mark_failed_without_retry_is_permanent(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1")])))
    [pending] = store.claim_deliveries(NOW, LEASE, 10)
    store.mark_failed(pending.id, NOW, "channel_not_found", None)
    assert store.delivery_counts() == {"failed": 1}
    assert store.claim_deliveries(NOW + timedelta(days=30), LEASE, 10) == []
    assert store.recent_matches()[0].delivery_status == "failed"


def test_a_late_failure_does_not_requeue_a_sent_delivery(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1")])))
    [pending] = store.claim_deliveries(NOW, LEASE, 10)
    store.mark_delivered(pending.id, NOW, "ts")
    store.mark_failed(pending.id, NOW, "timeout from a worker whose lease ran out", NOW)
    assert store.delivery_counts() == {"sent": 1}
    with pytest.raises(StoreError, match="delivery 4242 does not exist"):
        store.mark_failed(4242, NOW, "x", None)


def test_recent_matches_newest_first_with_limit_and_since(store: Store) -> None:
    for hours in range(3):
        at = NOW - timedelta(hours=hours)
        store.record_poll(poll(FEED_A, (article(f"h{hours}"), [match("r1")]), at=at))
    assert [m.article.entry_id for m in store.recent_matches()] == ["h0", "h1", "h2"]
    assert [m.article.entry_id for m in store.recent_matches(limit=1)] == ["h0"]
    since = store.recent_matches(since=NOW - timedelta(hours=1))
    assert [m.created_at for m in since] == [NOW, NOW - timedelta(hours=1)]


def test_articles_filters_for_dry_runs(store: Store) -> None:
    a_old = article("a-old", published=NOW - timedelta(days=2))
    a_new = article("a-new", published=NOW - timedelta(hours=1))
    b_mid = article("b-mid", FEED_B, published=NOW - timedelta(hours=5))
    store.record_poll(poll(FEED_A, (a_old, []), (a_new, [])))
    store.record_poll(poll(FEED_B, (b_mid, [])))
    assert store.articles() == [a_new, b_mid, a_old]
    assert store.articles(since=NOW - timedelta(days=1)) == [a_new, b_mid]
    assert store.articles(feed_url=FEED_A.url) == [a_new, a_old]
    assert store.articles(limit=1) == [a_new]


def test_backfill_records_only_the_matches_articles_lack(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1")]), (article("2"), [])))
    delivered = store.claim_deliveries(NOW, LEASE, 10)
    store.mark_delivered(delivered[0].id, NOW, "ts")
    stored = {s.article.entry_id: s.id for s in store.stored_articles()}
    assert [s.article for s in store.stored_articles()] == store.articles()
    later = NOW + timedelta(hours=1)
    found = [
        (stored["1"], [match("r1", term="changed"), match("r2", "#ops")]),  # r1 kept as it was
        (stored["2"], [match("r1"), match("r1", term="again")]),  # once per rule
    ]
    saved = store.record_backfill(found, later)
    assert saved == BackfillSaved(2, 0, {"r1": 1, "r2": 1})
    assert store.record_backfill(found, later, alert=True) == BackfillSaved(0, 0, {})
    kept = {(m.article.entry_id, m.match.rule_id): m.match for m in store.recent_matches()}
    assert kept["1", "r1"].hits[0].term == "flood" and len(kept) == 3
    assert store.claim_deliveries(later, LEASE, 10) == []  # no alert without `alert`


def test_backfill_alerts_once_per_article_and_new_channel(store: Store) -> None:
    store.record_poll(poll(FEED_A, (article("1"), [match("r1", "#news")]), (article("2"), [])))
    stored = {s.article.entry_id: s.id for s in store.stored_articles()}
    saved = store.record_backfill(
        [
            (stored["1"], [match("r2", "#news"), match("r3", "#ops")]),  # #news has its alert
            (stored["2"], [match("r2", "#news"), match("r4", "#news")]),
        ],
        NOW,
        alert=True,
    )
    assert saved == BackfillSaved(4, 2, {"r2": 2, "r3": 1, "r4": 1})
    claimed = sorted((d.article.entry_id, d.channel) for d in store.claim_deliveries(NOW, LEASE, 9))
    assert claimed == [("1", "#news"), ("1", "#ops"), ("2", "#news")]


# -- feeds: claiming, fetch state, sync -----------------------------------------------------


def test_claim_due_feeds_leases_them(store: Store) -> None:
    claimed = store.claim_due_feeds(NOW, LEASE)
    assert [f.url for f in claimed] == [FEED_A.url, FEED_B.url]
    assert {(f.leased_until, f.next_poll_at) for f in claimed} == {(NOW + LEASE, None)}
    assert store.claim_due_feeds(NOW + timedelta(minutes=4), LEASE) == []
    assert len(store.claim_due_feeds(NOW + LEASE, LEASE)) == 2


def test_claim_due_feeds_limit_and_schedule(store: Store) -> None:
    assert len(store.claim_due_feeds(NOW, LEASE, limit=1)) == 1
    assert len(store.claim_due_feeds(NOW, LEASE, limit=1)) == 1
    assert store.claim_due_feeds(NOW, LEASE, limit=1) == []
    store.record_poll(poll(FEED_A, next_poll_at=NOW + timedelta(hours=1)))
    assert [f.url for f in store.claim_due_feeds(NOW + timedelta(hours=1), LEASE)] == [
        FEED_A.url,
        FEED_B.url,
    ]


def test_claim_every_feed_ignores_the_schedule_but_not_deactivation(store: Store) -> None:
    store.record_poll(poll(FEED_A, next_poll_at=NOW + timedelta(hours=1)))
    assert [f.url for f in store.claim_due_feeds(NOW, LEASE)] == [FEED_B.url]
    store.sync_feeds([FEED_A], NOW)  # FEED_B leaves the feeds file
    claimed = store.claim_due_feeds(NOW, LEASE, every=True)
    assert [(f.url, f.leased_until) for f in claimed] == [(FEED_A.url, NOW + LEASE)]


def test_claims_come_in_due_order_and_skip_feeds_another_worker_holds(store: Store) -> None:
    store.sync_feeds([FeedSpec(f"https://f{n}.example/feed") for n in range(6)], NOW)
    for n in range(6):  # f5 is due first, f0 last
        store.record_poll(
            poll(FeedSpec(f"https://f{n}.example/feed"), next_poll_at=NOW - timedelta(minutes=n))
        )
    store.record_poll(poll(FEED_A, next_poll_at=NOW + timedelta(hours=1)))
    store.record_poll(poll(FEED_B, next_poll_at=NOW + timedelta(hours=1)))
    first = store.claim_due_feeds(NOW, LEASE, 2, owner="w1")
    second = store.claim_due_feeds(NOW, LEASE, 2, owner="w2")
    assert [f.url for f in first] == ["https://f4.example/feed", "https://f5.example/feed"]
    assert [f.url for f in second] == ["https://f2.example/feed", "https://f3.example/feed"]
    # w1 crashed: its claims come back when the lease ends, not before.
    assert len(store.claim_due_feeds(NOW + LEASE / 2, LEASE, owner="w3")) == 2  # f0, f1
    assert store.claim_due_feeds(NOW + LEASE / 2, LEASE, owner="w3") == []
    store.renew_leases([f.url for f in second], NOW + LEASE / 2, LEASE, "w2")
    back = store.claim_due_feeds(NOW + LEASE, LEASE, owner="w3")
    assert [f.url for f in back] == [f.url for f in first]  # w2 renewed its claims


def test_an_outcome_ends_the_claim_and_release_gives_feeds_back_at_once(store: Store) -> None:
    claimed = store.claim_due_feeds(NOW, LEASE, owner="w1")
    assert store.release_leases([FEED_B.url], "w2") == 0  # not w2's to give back
    assert store.renew_leases([FEED_B.url], NOW, LEASE, "w2") == 0
    store.record_poll(poll(FEED_A))
    assert store.release_leases([f.url for f in claimed], "w1") == 1  # FEED_A's claim had ended
    assert [(f.url, f.leased_until) for f in store.feeds()] == [
        (FEED_A.url, None),
        (FEED_B.url, None),
    ]
    assert [f.url for f in store.claim_due_feeds(NOW, LEASE, owner="w2")] == [FEED_B.url]


def test_claim_every_feed_takes_each_once_per_cycle(store: Store) -> None:
    """`poll --once --all` in leases: feeds polled since the cycle began are not taken again."""
    store.record_poll(poll(FEED_A, at=NOW - timedelta(hours=1), next_poll_at=NOW + LEASE))
    start = NOW
    held = store.claim_due_feeds(NOW, LEASE, every=True, since=start, owner="other")
    assert [f.url for f in held] == [FEED_A.url, FEED_B.url]
    assert store.claim_due_feeds(NOW, LEASE, every=True, since=start, owner="w1") == []
    store.record_poll(poll(FEED_A, at=NOW + timedelta(seconds=1)))
    store.release_leases([FEED_B.url], "other")
    later = NOW + timedelta(seconds=2)
    taken = store.claim_due_feeds(later, LEASE, every=True, since=start, owner="w1")
    assert [f.url for f in taken] == [FEED_B.url]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_syncing_a_fresh_database_together_all_succeed(database_url: str) -> None:
    """Issue #11: each worker syncs the feeds file at start; they raced on uq_feeds_url."""
    specs = [FeedSpec(f"https://f{n}.example/feed") for n in range(300)]
    setup = Store.open(database_url)
    setup.upgrade()
    stores = [Store.open(database_url) for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores), timeout=60)

    def start(worker: Store) -> None:
        try:
            barrier.wait()
            worker.sync_feeds(specs, NOW)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(worker,)) for worker in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert sorted(f.url for f in setup.feeds()) == sorted(spec.url for spec in specs)
    finally:
        for worker in (setup, *stores):
            worker.close()


def test_concurrent_claims_never_hand_out_a_feed_twice(store: Store) -> None:
    store.sync_feeds([FeedSpec(f"https://f{n}.example/feed") for n in range(20)], NOW)
    claimed: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                claimed.extend(f.url for f in store.claim_due_feeds(NOW, LEASE, limit=2))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(claimed) == sorted(f"https://f{n}.example/feed" for n in range(20))


def test_errors_count_up_and_a_success_resets_them(store: Store) -> None:
    store.record_poll(poll(FEED_A, etag='"v1"', last_modified="Sat, 01 Mar 2025", body_digest="d1"))
    first = state(store, FEED_A.url)
    assert (first.first_polled_at, first.last_success_at, first.etag) == (NOW, NOW, '"v1"')

    for n in range(1, 3):
        at = NOW + timedelta(hours=n)
        store.record_poll(poll(FEED_A, at=at, status=503, error="HTTP 503", etag=None))
    failing = state(store, FEED_A.url)
    assert (failing.error_count, failing.last_error, failing.last_status) == (2, "HTTP 503", 503)
    assert (failing.etag, failing.last_modified, failing.body_digest) == (
        '"v1"',
        "Sat, 01 Mar 2025",
        "d1",
    )
    assert failing.last_polled_at == NOW + timedelta(hours=2)
    assert failing.last_success_at == NOW
    assert failing.next_poll_at == NOW + timedelta(hours=2, minutes=10)

    later = NOW + timedelta(hours=3)
    store.record_poll(poll(FEED_A, at=later, status=304))  # 304: validators not repeated
    healed = state(store, FEED_A.url)
    assert (healed.error_count, healed.last_error, healed.last_status) == (0, None, 304)
    assert (healed.etag, healed.last_success_at, healed.first_polled_at) == ('"v1"', later, NOW)

    store.record_poll(poll(FEED_A, at=later, etag='"v2"'))
    assert state(store, FEED_A.url).etag == '"v2"'


def test_a_failed_first_poll_leaves_the_backlog_poll_pending(store: Store) -> None:
    store.record_poll(poll(FEED_B, status=None, error="connection refused"))
    assert state(store, FEED_B.url).first_polled_at is None


def test_record_poll_for_an_unknown_feed_says_what_to_do(store: Store) -> None:
    stray = FeedSpec("https://stray.example/feed")
    with pytest.raises(StoreError, match=r"stray\.example/feed: feed is not in the database"):
        store.record_poll(poll(stray, (article("1", stray), [])))


def test_sync_feeds_deactivates_keeps_history_and_reactivates(store: Store) -> None:
    store.record_poll(poll(FEED_B, (article("b1", FEED_B), [match("r1")])))
    renamed_a = FeedSpec(FEED_A.url, "Agency A (renamed)", ("wire",), 600.0)
    store.sync_feeds([renamed_a], NOW)

    assert [(f.url, f.active) for f in store.feeds()] == [(FEED_A.url, True), (FEED_B.url, False)]
    assert [f.url for f in store.claim_due_feeds(NOW, LEASE)] == [FEED_A.url]
    assert [a.entry_id for a in store.articles()] == ["b1"]  # history kept
    assert state(store, FEED_A.url).name == "Agency A (renamed)"

    store.sync_feeds([renamed_a, FeedSpec(FEED_B.url, "Blog B again", ("x",))], NOW)
    b = state(store, FEED_B.url)
    assert (b.active, b.name, b.tags) == (True, "Blog B again", ("x",))
    assert [(a.feed_name, a.feed_tags) for a in store.articles()] == [("Blog B again", ("x",))]


def test_a_shorter_interval_brings_the_next_poll_forward(store: Store) -> None:
    store.record_poll(poll(FEED_A, next_poll_at=NOW + timedelta(hours=6)))
    store.sync_feeds([FeedSpec(FEED_A.url, FEED_A.name, FEED_A.tags, 60.0), FEED_B], NOW)
    assert state(store, FEED_A.url).next_poll_at == NOW + timedelta(seconds=60)
    store.sync_feeds([FeedSpec(FEED_A.url, FEED_A.name, FEED_A.tags, 7200.0), FEED_B], NOW)
    assert state(store, FEED_A.url).next_poll_at == NOW + timedelta(seconds=60)


# -- opening, URLs, outages -----------------------------------------------------------------


def test_open_on_a_closed_port_names_the_setting() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://monitor:s3cret@127.0.0.1:{port}/monitor"
    with pytest.raises(StoreError) as caught:
        Store.open(url)
    message = str(caught.value)
    assert "MONITOR_DATABASE_URL" in message
    assert "is the server running?" in message
    assert f"127.0.0.1:{port}" in message
    assert "s3cret" not in message


def test_open_a_sqlite_file_in_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"unable to open database file.*MONITOR_DATABASE_URL"):
        Store.open(f"sqlite:///{tmp_path}/missing/monitor.db")


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u:p@db/monitor", "postgresql+psycopg"),
        ("postgres://u:p@db/monitor", "postgresql+psycopg"),
        ("postgresql+psycopg://u:p@db/monitor", "postgresql+psycopg"),
        ("sqlite:///monitor.db", "sqlite"),
    ],
)
def test_postgresql_urls_use_psycopg(given: str, driver: str) -> None:
    assert parse_url(given).drivername == driver


def test_unusable_urls_name_the_setting() -> None:
    with pytest.raises(StoreError, match="MONITOR_DATABASE_URL: cannot parse"):
        Store.open("not a url")
    with pytest.raises(StoreError, match="MONITOR_DATABASE_URL: unsupported database 'mysql'"):
        Store.open("mysql://u@h/db")


@pytest.mark.postgres
def test_plain_postgresql_url_is_accepted(postgres_url: str) -> None:
    store = Store.open(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        store.upgrade()
        assert store.feeds() == []
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_restart_between_calls_is_survived(
    postgres_server: PostgresHandle, postgres_url: str
) -> None:
    store = Store.open(postgres_url)
    try:
        store.upgrade()
        store.sync_feeds([FEED_A], NOW)
        assert len(store.feeds()) == 1  # a pooled connection now exists
        postgres_server.restart()
        assert [f.url for f in store.feeds()] == [FEED_A.url]
    finally:
        store.close()


@pytest.mark.postgres
def test_a_postgresql_outage_is_a_store_error_then_recovers(
    postgres_server: PostgresHandle, postgres_url: str
) -> None:
    store = Store.open(postgres_url)
    try:
        store.upgrade()
        postgres_server.stop()
        try:
            with pytest.raises(StoreError, match="is the server running"):
                store.feeds()
        finally:
            postgres_server.start()
        assert [f.url for f in store.feeds()] == []
    finally:
        store.close()


# -- a host's own signals (issue #8) ------------------------------------------------------


def test_a_stored_error_is_bounded_whatever_the_caller_passes(store: Store) -> None:
    # The last guard: a message built anywhere from a server's bytes is cut where it is kept.
    store.record_poll(poll(FEED_A, status=None, error="Bad status line: b'" + "\x00Z" * 50_000))
    stored = state(store, FEED_A.url).last_error
    assert stored is not None and len(stored) == MAX_MESSAGE
    assert stored.isprintable() and stored.endswith("...")


def test_attention_and_a_failing_run_last_until_a_success(store: Store) -> None:
    reason = "HTTP 410 Gone: the feed was removed"
    store.record_poll(poll(FEED_A, status=410, error="HTTP 410", attention=reason))
    later = NOW + timedelta(days=1)
    store.record_poll(poll(FEED_A, at=later, status=503, error="HTTP 503"))  # keeps the reason
    gone = state(store, FEED_A.url)
    assert (gone.attention, gone.failing_since, gone.error_count) == (reason, NOW, 2)
    assert gone.health == "attention"
    store.record_poll(poll(FEED_A, at=later + timedelta(days=1)))
    healed = state(store, FEED_A.url)
    assert (healed.attention, healed.failing_since, healed.not_found_count) == (None, None, 0)
    assert healed.health == "ok"


def test_not_found_polls_are_counted_and_any_other_outcome_resets_them(store: Store) -> None:
    for n in range(3):
        at = NOW + timedelta(hours=n)
        store.record_poll(poll(FEED_A, at=at, status=404, error="HTTP 404", not_found_count=n + 1))
    assert state(store, FEED_A.url).not_found_count == 3
    store.record_poll(poll(FEED_A, at=NOW + timedelta(hours=4), status=503, error="HTTP 503"))
    assert state(store, FEED_A.url).not_found_count == 0


def test_a_move_changes_where_the_feed_is_fetched_not_its_identity(store: Store) -> None:
    moved = "https://a.example/new-feed"
    store.record_poll(poll(FEED_A, moved_to=moved))
    store.record_poll(poll(FEED_A, at=NOW + timedelta(hours=1)))  # no redirect any more
    store.sync_feeds([FEED_A, FEED_B], NOW + timedelta(hours=2))  # the file still has the old URL
    feeds = store.feeds()
    assert [(f.url, f.fetch_url, f.source_url) for f in feeds] == [
        (FEED_A.url, moved, moved),
        (FEED_B.url, None, FEED_B.url),
    ]
    assert [f.url for f in store.claim_due_feeds(NOW + timedelta(days=1), LEASE)] == [
        FEED_A.url,
        FEED_B.url,
    ]
    store.record_poll(poll(FEED_A, at=NOW + timedelta(days=1), moved_to=FEED_A.url))  # moved back
    assert state(store, FEED_A.url).fetch_url is None
