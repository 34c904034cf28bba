"""Whether a new match alerts now or is held back for a digest or a summary (#9).

Pure: the store calls `route` inside the transaction that writes the article, with the
policy, the active silences, the alerts of the last hour and ``now``, and writes what
it returns. Nothing is dropped: a held match is a row the digests and `monitor silence
list` count, and `monitor matches list` shows.

Order of the checks, per match: its rule's digest, a silence, the channel's quiet hours,
then the hourly limits of the rule and of the channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from monitor.model import Match
from monitor.silence import QuietHours, Silence, same_channel

HoldReason = Literal["digest", "silence", "quiet", "throttle"]
HOLD_REASONS: tuple[HoldReason, ...] = ("digest", "silence", "quiet", "throttle")
# The documented default: a channel takes at most this many immediate alerts an hour.
DEFAULT_CHANNEL_MAX_PER_HOUR = 30


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """What the live rules and the settings say about holding alerts back."""

    digest_rules: frozenset[str] = frozenset()
    rule_max_per_hour: Mapping[str, int] = field(default_factory=dict)
    channel_max_per_hour: int | None = DEFAULT_CHANNEL_MAX_PER_HOUR  # None: no limit
    quiet_hours: tuple[QuietHours, ...] = ()
    default_channel: str | None = None  # the name of channel "" (rules that name none)

    def channel_name(self, channel: str) -> str:
        return channel or self.default_channel or ""

    def quiet_until(self, channel: str, now: datetime) -> datetime | None:
        name = self.channel_name(channel)
        for quiet in self.quiet_hours:
            if name and same_channel(quiet.channel, name):
                return quiet.quiet_until(now)
        return None


class RecentAlerts(Protocol):
    """Immediate alerts queued in the hour before now, this transaction's included."""

    def to_channel(self, channel: str) -> int: ...

    def of_rule(self, rule_id: str, channel: str) -> int: ...


@dataclass(frozen=True, slots=True)
class Hold:
    rule_id: str
    reason: HoldReason
    release_at: datetime | None = None  # quiet, throttle: when it goes out in a summary
    silence_id: int | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """One article's matches for one channel: alert now (``alert``), and the held ones."""

    alert: tuple[Match, ...]
    held: tuple[Hold, ...]


def next_hour(now: datetime) -> datetime:
    """The top of the next hour: throttled matches go out then, as one summary."""
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def route(
    policy: DeliveryPolicy,
    silences: Sequence[Silence],
    recent: RecentAlerts,
    *,
    feed_url: str,
    link: str | None,
    channel: str,
    matches: Sequence[Match],
    now: datetime,
) -> Route:
    """Split one article's matches for ``channel`` ("" is the default) into alert and held."""
    name = policy.channel_name(channel)
    alert: list[Match] = []
    held: list[Hold] = []
    for match in matches:
        if match.rule_id in policy.digest_rules:
            held.append(Hold(match.rule_id, "digest"))
            continue
        silence = next(
            (
                s
                for s in silences
                if s.active(now) and s.covers(match.rule_id, feed_url, link, name)
            ),
            None,
        )
        if silence is not None:
            held.append(Hold(match.rule_id, "silence", silence_id=silence.id))
            continue
        alert.append(match)
    quiet_end = policy.quiet_until(channel, now) if alert else None
    if quiet_end is not None:
        held += [Hold(match.rule_id, "quiet", release_at=quiet_end) for match in alert]
        return Route((), tuple(held))
    throttled = [
        match
        for match in alert
        if (limit := policy.rule_max_per_hour.get(match.rule_id)) is not None
        and recent.of_rule(match.rule_id, channel) >= limit
    ]
    limit = policy.channel_max_per_hour
    if limit is not None and recent.to_channel(channel) >= limit:
        throttled = alert
    held += [Hold(match.rule_id, "throttle", release_at=next_hour(now)) for match in throttled]
    return Route(tuple(match for match in alert if match not in throttled), tuple(held))
