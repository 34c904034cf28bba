"""The store's side of fewer, better alerts (#9): held matches, digests and silences.

`Store` takes these methods from `HoldStore`; like the rest of the store they take
and return values and run each as one transaction. `Gatekeeper` is what `record_polls`
asks, inside its transaction, whether a new match alerts now (monitor.gate decides).
A held match is a row of `holds`; a digest takes it (``digest_id``), or the end of
quiet hours queues it as an ordinary alert (``released_at``), so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from monitor.digest import QUIET_SUMMARY_FROM, DigestKind, HeldItem, PendingDigest
from monitor.errors import StoreError
from monitor.gate import HOLD_REASONS, DeliveryPolicy, Hold, route
from monitor.model import Article, Match
from monitor.silence import Silence
from monitor.store.schema import articles, deliveries, digests, feeds, holds, matches, silences

T = TypeVar("T")
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class HoldState:
    """Why a stored match did not alert (yet): for `monitor matches list`."""

    reason: str
    silence_id: int | None
    digest_id: int | None
    digest_status: str | None
    released: bool

    def __str__(self) -> str:
        if self.reason == "silence":
            return f"silenced by #{self.silence_id}"
        if self.digest_id is not None:
            kind = _KIND_NAMES.get(self.reason, self.reason)
            return f"in {kind} #{self.digest_id}: {self.digest_status}"
        if self.released:
            return "queued after quiet hours"
        return {
            "digest": "held for the digest",
            "quiet": "held for the end of quiet hours",
            "throttle": "held: over the hourly limit",
        }.get(self.reason, f"held: {self.reason}")


_KIND_NAMES = {"digest": "digest", "quiet": "quiet-hours summary", "throttle": "hourly summary"}


class Gatekeeper:
    """Asks monitor.gate about each new article's matches inside one record transaction.

    It reads the active silences and the last hour's alerts once, and counts the alerts
    this transaction queues, so one poll of many matching articles meets the limits too.
    """

    def __init__(self, connection: Connection, policy: DeliveryPolicy, now: datetime) -> None:
        self._connection = connection
        self._policy = policy
        self._now = now
        self._silences: list[Silence] | None = (
            None  # read at the first new match: most polls have none
        )
        self._channels: dict[str, int] = {}
        self._rules: dict[tuple[str, str], int] = {}
        self.rows: list[dict[str, Any]] = []

    def admit(
        self, article_id: int, article: Article, channel: str, found: Sequence[Match]
    ) -> bool:
        """Whether the article alerts ``channel`` now; what is held is kept in ``rows``."""
        if self._silences is None:
            self._silences = _active_silences(self._connection, self._now)
        decided = route(
            self._policy,
            self._silences,
            self,
            feed_url=article.feed_url,
            link=article.link,
            channel=channel,
            matches=found,
            now=self._now,
        )
        self.rows += [self._row(article_id, channel, hold) for hold in decided.held]
        if decided.alert:
            self._channels[channel] = self.to_channel(channel) + 1
            for match in decided.alert:
                self._rules[(match.rule_id, channel)] = self.of_rule(match.rule_id, channel) + 1
        return bool(decided.alert)

    def to_channel(self, channel: str) -> int:
        if channel not in self._channels:
            self._channels[channel] = self._connection.execute(
                select(func.count()).where(
                    deliveries.c.channel == channel,
                    deliveries.c.created_at > self._now - _HOUR,
                )
            ).scalar_one()
        return self._channels[channel]

    def of_rule(self, rule_id: str, channel: str) -> int:
        key = (rule_id, channel)
        if key not in self._rules:
            alerted = (
                select(func.count())
                .select_from(
                    deliveries.join(
                        matches,
                        and_(
                            matches.c.article_id == deliveries.c.article_id,
                            matches.c.rule_id == rule_id,
                        ),
                    ).outerjoin(
                        holds,
                        and_(
                            holds.c.article_id == matches.c.article_id,
                            holds.c.rule_id == matches.c.rule_id,
                        ),
                    )
                )
                .where(
                    deliveries.c.channel == channel,
                    deliveries.c.created_at > self._now - _HOUR,
                    holds.c.id.is_(None),
                )
            )
            self._rules[key] = self._connection.execute(alerted).scalar_one()
        return self._rules[key]

    def _row(self, article_id: int, channel: str, hold: Hold) -> dict[str, Any]:
        return {
            "article_id": article_id,
            "rule_id": hold.rule_id,
            "channel": channel,
            "reason": hold.reason,
            "silence_id": hold.silence_id,
            "held_at": self._now,
            "release_at": hold.release_at,
        }

    def write(self) -> None:
        if self.rows:
            self._connection.execute(insert(holds), self.rows)


class HoldStore:
    """Held matches, digests and silences: the methods `Store` adds for them."""

    _policy: DeliveryPolicy | None = None

    def _run(self, work: Callable[[Connection], T], *, write: bool = False) -> T:
        raise NotImplementedError  # Store's

    def use_policy(self, policy: DeliveryPolicy | None) -> None:
        """Hold new matches back as ``policy`` says (digests, silences, quiet hours, limits).

        The service sets it at start and after each rules reload; None: every match alerts.
        """
        self._policy = policy

    def gatekeeper(self, connection: Connection, now: datetime) -> Gatekeeper | None:
        return None if self._policy is None else Gatekeeper(connection, self._policy, now)

    # -- silences -------------------------------------------------------------------------

    def add_silence(
        self,
        *,
        reason: str,
        now: datetime,
        until: datetime,
        rule_id: str | None = None,
        feed_url: str | None = None,
        domain: str | None = None,
        channel: str | None = None,
    ) -> Silence:
        """A silence of what every given criterion names, from now until ``until``."""
        if not any((rule_id, feed_url, domain, channel)):
            raise StoreError("a silence names a rule, a feed, a domain or a channel")
        values = {
            "rule_id": rule_id,
            "feed_url": feed_url,
            "domain": domain,
            "channel": channel,
            "reason": reason,
            "created_at": now,
            "expires_at": until,
        }
        new_id = self._run(
            lambda c: c.execute(
                insert(silences).values(values).returning(silences.c.id)
            ).scalar_one(),
            write=True,
        )
        return Silence(new_id, reason, now, until, rule_id, feed_url, domain, channel)

    def silences(self, now: datetime, *, ended: bool = False) -> list[Silence]:
        """Active silences (with ``ended``, every one), newest first, with what each held."""
        held = (
            select(holds.c.silence_id, func.count().label("held"))
            .where(holds.c.silence_id.is_not(None))
            .group_by(holds.c.silence_id)
            .subquery()
        )
        query = (
            select(silences, func.coalesce(held.c.held, 0).label("held"))
            .outerjoin(held, held.c.silence_id == silences.c.id)
            .order_by(silences.c.id.desc())
        )
        if not ended:
            query = query.where(silences.c.removed_at.is_(None), silences.c.expires_at > now)
        return [_silence(row) for row in self._run(lambda c: c.execute(query).all())]

    def remove_silence(self, silence_id: int, now: datetime) -> Silence | None:
        """End a silence now; None when there is no such silence still in force."""

        def remove(connection: Connection) -> Silence | None:
            ended = connection.execute(
                update(silences)
                .where(
                    silences.c.id == silence_id,
                    silences.c.removed_at.is_(None),
                    silences.c.expires_at > now,
                )
                .values(removed_at=now)
            ).rowcount
            if not ended:
                return None
            row = connection.execute(
                select(silences, _held_by(silence_id).label("held")).where(
                    silences.c.id == silence_id
                )
            ).one()
            return _silence(row)

        return self._run(remove, write=True)

    # -- digests --------------------------------------------------------------------------

    def held_for_digest(self, rule_id: str | None = None) -> dict[str, int]:
        """rule id -> matches waiting for the rule's next digest."""
        query = (
            select(holds.c.rule_id, func.count())
            .where(holds.c.reason == "digest", holds.c.digest_id.is_(None))
            .group_by(holds.c.rule_id)
            .order_by(holds.c.rule_id)
        )
        if rule_id is not None:
            query = query.where(holds.c.rule_id == rule_id)
        return {rule: count for rule, count in self._run(lambda c: c.execute(query).all())}

    def bundle_digests(self, now: datetime, rule_id: str | None = None) -> int:
        """Put each rule's waiting matches (of ``rule_id`` alone, if given) into a digest to
        send, one per rule and channel; returns how many digests that made.

        Concurrent callers (two workers at 09:00) bundle each match once: a match is taken
        only while it has no digest, and a digest that got none is not kept.
        """
        waiting = and_(holds.c.reason == "digest", holds.c.digest_id.is_(None))
        if rule_id is not None:
            waiting = and_(waiting, holds.c.rule_id == rule_id)

        def bundle(connection: Connection) -> int:
            groups = connection.execute(
                select(holds.c.rule_id, holds.c.channel)
                .where(waiting)
                .distinct()
                .order_by(holds.c.rule_id, holds.c.channel)
            ).all()
            made = 0
            for rule, channel in groups:
                made += _bundle(
                    connection,
                    now,
                    "digest",
                    channel,
                    rule,
                    and_(waiting, holds.c.rule_id == rule, holds.c.channel == channel),
                )
            return made

        return self._run(bundle, write=True)

    def release_held(self, now: datetime) -> tuple[int, int]:
        """Matches whose quiet hours or throttle hour ended go out: a few quiet ones as
        ordinary alerts, the rest as one summary per channel and reason.

        Returns (alerts queued, summaries made).
        """
        due = and_(
            holds.c.reason.in_(("quiet", "throttle")),
            holds.c.digest_id.is_(None),
            holds.c.released_at.is_(None),
            holds.c.release_at <= now,
        )

        def release(connection: Connection) -> tuple[int, int]:
            groups = connection.execute(
                select(holds.c.channel, holds.c.reason, func.count())
                .where(due)
                .group_by(holds.c.channel, holds.c.reason)
                .order_by(holds.c.channel, holds.c.reason)
            ).all()
            queued = made = 0
            for channel, reason, count in groups:
                group = and_(due, holds.c.channel == channel, holds.c.reason == reason)
                if reason == "quiet" and count < QUIET_SUMMARY_FROM:
                    queued += _queue_alerts(connection, now, channel, group)
                    continue
                rules = connection.execute(select(holds.c.rule_id).where(group).distinct()).all()
                rule = rules[0].rule_id if len(rules) == 1 else None
                made += _bundle(connection, now, reason, channel, rule, group)
            return queued, made

        return self._run(release, write=True)

    def claim_digests(self, now: datetime, lease: timedelta, limit: int) -> list[PendingDigest]:
        """Digests due at ``now``, oldest first, each leased until now+lease, with their items."""
        due = (
            select(digests.c.id)
            .where(digests.c.status == "pending", digests.c.next_attempt_at <= now)
            .order_by(digests.c.created_at, digests.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claim = (
            update(digests)
            .where(digests.c.id.in_(due))
            .values(next_attempt_at=now + lease)
            .returning(
                digests.c.id,
                digests.c.channel,
                digests.c.kind,
                digests.c.rule_id,
                digests.c.attempts,
                digests.c.created_at,
            )
        )
        items = (
            select(
                holds.c.digest_id,
                articles.c.id.label("article_id"),
                articles.c.entry_id,
                articles.c.link,
                articles.c.title,
                articles.c.summary,
                articles.c.content,
                articles.c.authors,
                articles.c.categories,
                articles.c.language,
                articles.c.published,
                articles.c.dated,
                feeds.c.url.label("feed_url"),
                feeds.c.name.label("feed_name"),
                feeds.c.tags.label("feed_tags"),
                matches.c.rule_id,
                matches.c.rule_title,
                matches.c.severity,
                matches.c.channel,
                matches.c.hits,
            )
            .select_from(
                holds.join(articles, articles.c.id == holds.c.article_id)
                .join(feeds, feeds.c.id == articles.c.feed_id)
                .join(
                    matches,
                    and_(
                        matches.c.article_id == holds.c.article_id,
                        matches.c.rule_id == holds.c.rule_id,
                    ),
                )
            )
            .order_by(articles.c.published, articles.c.id)
        )

        def take(connection: Connection) -> list[PendingDigest]:
            from monitor.store.store import _article, _match

            claimed = sorted(connection.execute(claim).all(), key=lambda r: (r.created_at, r.id))
            found: dict[int, list[HeldItem]] = {row.id: [] for row in claimed}
            if found:
                for row in connection.execute(items.where(holds.c.digest_id.in_(list(found)))):
                    found[row.digest_id].append(
                        HeldItem(row.article_id, _article(row), _match(row))
                    )
            return [
                PendingDigest(
                    row.id, row.channel, row.kind, row.rule_id, row.attempts, tuple(found[row.id])
                )
                for row in claimed
            ]

        return self._run(take, write=True)

    def mark_digest_sent(self, digest_id: int, now: datetime, reference: str | None) -> None:
        sent = (
            update(digests)
            .where(digests.c.id == digest_id)
            .values(
                status="sent",
                attempts=digests.c.attempts + 1,
                sent_at=now,
                reference=reference,
            )
        )
        if self._run(lambda c: c.execute(sent).rowcount, write=True) == 0:
            raise StoreError(f"digest {digest_id} does not exist; cannot mark it sent")

    def mark_digest_failed(
        self, digest_id: int, now: datetime, error: str, retry_at: datetime | None
    ) -> None:
        """Retry at ``retry_at``, or give up (status failed) when it is None."""
        changes: dict[str, Any] = {"attempts": digests.c.attempts + 1, "last_error": error}
        if retry_at is None:
            changes["status"] = "failed"
        else:
            changes["next_attempt_at"] = retry_at
        failed = (
            update(digests)
            .where(digests.c.id == digest_id, digests.c.status == "pending")
            .values(changes)
        )
        self._run(lambda c: c.execute(failed), write=True)

    def hold_counts(self) -> dict[tuple[str, str], int]:
        """(reason, waiting|released) -> held matches, for the metrics."""
        state = (holds.c.digest_id.is_(None) & holds.c.released_at.is_(None)).label("waiting")
        query = select(holds.c.reason, state, func.count()).group_by(holds.c.reason, state)
        counts: dict[tuple[str, str], int] = {
            (reason, s): 0 for reason in HOLD_REASONS for s in ("waiting", "released")
        }
        for reason, waiting, count in self._run(lambda c: c.execute(query).all()):
            counts[(reason, "waiting" if waiting else "released")] = count
        return counts

    def digest_counts(self) -> dict[str, int]:
        """Digests per status, for the statuses that have any."""
        query = select(digests.c.status, func.count()).group_by(digests.c.status)
        return {status: count for status, count in self._run(lambda c: c.execute(query).all())}


def _bundle(
    connection: Connection,
    now: datetime,
    kind: DigestKind | str,
    channel: str,
    rule_id: str | None,
    which: Any,
) -> int:
    """One pending digest of the held matches ``which`` selects; 0 if another took them."""
    digest_id = connection.execute(
        insert(digests)
        .values(
            channel=channel,
            rule_id=rule_id,
            kind=kind,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(digests.c.id)
    ).scalar_one()
    taken = connection.execute(
        update(holds).where(which).values(digest_id=digest_id, released_at=now)
    ).rowcount
    if not taken:
        connection.execute(delete(digests).where(digests.c.id == digest_id))
        return 0
    return 1


def _queue_alerts(connection: Connection, now: datetime, channel: str, which: Any) -> int:
    """Queue the held matches ``which`` selects as ordinary alerts; returns how many new."""
    from monitor.store.store import _delivery_row, _insert_new

    article_ids = sorted(
        {row.article_id for row in connection.execute(select(holds.c.article_id).where(which))}
    )
    connection.execute(update(holds).where(which).values(released_at=now))
    rows = [_delivery_row(article_id, channel, now) for article_id in article_ids]
    return len(_insert_new(connection, deliveries, rows, deliveries.c.id))


def _active_silences(connection: Connection, now: datetime) -> list[Silence]:
    query = select(silences).where(silences.c.removed_at.is_(None), silences.c.expires_at > now)
    return [replace(_silence(row), held=0) for row in connection.execute(query)]


def _held_by(silence_id: int) -> Any:
    return select(func.count()).where(holds.c.silence_id == silence_id).scalar_subquery()


def _silence(row: Any) -> Silence:
    mapping = row._mapping
    return Silence(
        id=row.id,
        reason=row.reason,
        created_at=row.created_at,
        expires_at=row.expires_at,
        rule_id=row.rule_id,
        feed_url=row.feed_url,
        domain=row.domain,
        channel=row.channel,
        removed_at=row.removed_at,
        held=mapping.get("held", 0) or 0,
    )
