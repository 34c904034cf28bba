"""Silences and quiet hours: when a match is held back instead of alerting (#9).

Pure values and decisions: a `Silence` says which matches it covers until when, and
`QuietHours` which hours of a channel's day are quiet. The store keeps silences and
what they held; `monitor.gate` applies both to each new match.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def same_channel(a: str, b: str) -> bool:
    """Channel names as rules and settings write them: `#news` and `news` are one channel."""
    return a.strip().lstrip("#").casefold() == b.strip().lstrip("#").casefold()


@dataclass(frozen=True, slots=True)
class Silence:
    """An operator's "not now": matches it covers are stored and counted, not alerted.

    Every criterion given must hold (a silence of a rule in one channel spares the rule's
    other channels). `held` is how many matches it held back, as the store counts them.
    """

    id: int
    reason: str
    created_at: datetime
    expires_at: datetime
    rule_id: str | None = None
    feed_url: str | None = None
    domain: str | None = None
    channel: str | None = None
    removed_at: datetime | None = None
    held: int = 0

    def active(self, now: datetime) -> bool:
        return self.removed_at is None and now < self.expires_at

    def state(self, now: datetime) -> str:
        if self.removed_at is not None:
            return "removed"
        return "active" if self.active(now) else "expired"

    def covers(self, rule_id: str, feed_url: str, link: str | None, channel: str) -> bool:
        """Whether a match of ``rule_id`` on an article of ``feed_url`` at ``link`` to
        ``channel`` (resolved: the default channel's name, not "") is silenced."""
        if self.rule_id is not None and self.rule_id != rule_id:
            return False
        if self.feed_url is not None and self.feed_url != feed_url:
            return False
        if self.channel is not None and not same_channel(self.channel, channel):
            return False
        return self.domain is None or in_domain(link, self.domain)

    @property
    def scope(self) -> str:
        """What it covers, for `monitor silence list`."""
        parts = [
            f"{name} {value}"
            for name, value in (
                ("rule", self.rule_id),
                ("feed", self.feed_url),
                ("domain", self.domain),
                ("channel", self.channel),
            )
            if value is not None
        ]
        return ", ".join(parts)


def in_domain(link: str | None, domain: str) -> bool:
    """Whether ``link``'s host is ``domain`` or one of its subdomains."""
    try:
        host = (urlsplit(link or "").hostname or "").removeprefix("www.")
    except ValueError:
        return False
    wanted = domain.strip().lower().removeprefix("www.")
    return bool(host) and (host == wanted or host.endswith("." + wanted))


_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})(?:\s+(\S+))?\s*$")


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A channel's quiet hours each day, in a time zone; ``start`` > ``end`` spans midnight."""

    channel: str
    start: time
    end: time
    timezone: str = "UTC"

    def quiet_until(self, now: datetime) -> datetime | None:
        """The end (UTC) of the quiet hours ``now`` is in; None when ``now`` is not quiet."""
        zone = ZoneInfo(self.timezone)
        local = now.astimezone(zone)
        clock = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            quiet = self.start <= clock < self.end
        else:
            quiet = clock >= self.start or clock < self.end
        if not quiet:
            return None
        end_day = local.date() if clock < self.end else local.date() + timedelta(days=1)
        return datetime.combine(end_day, self.end, tzinfo=zone).astimezone(UTC)

    def __str__(self) -> str:
        return f"{self.channel}={self.start:%H:%M}-{self.end:%H:%M} {self.timezone}"


def parse_quiet_hours(value: str | Mapping[str, str]) -> tuple[QuietHours, ...]:
    """`#chan=22:00-07:00 Europe/London; #other=23:00-06:00` or a TOML table of the same.

    ValueError names the entry and what to write instead.
    """
    if isinstance(value, str):
        entries: list[tuple[str, str]] = []
        for part in (p.strip() for p in value.split(";")):
            if not part:
                continue
            channel, equals, window = part.partition("=")
            if not equals:
                raise ValueError(
                    f"{part!r} needs channel=HH:MM-HH:MM [time zone], "
                    "e.g. '#news=22:00-07:00 Europe/London'"
                )
            entries.append((channel.strip(), window))
    else:
        entries = [(str(channel), str(window)) for channel, window in value.items()]
    return tuple(_quiet(channel, window) for channel, window in entries)


def _quiet(channel: str, window: str) -> QuietHours:
    found = _WINDOW.match(window)
    if not channel or found is None:
        raise ValueError(
            f"{channel or '(no channel)'}={window.strip()!r}: write channel=HH:MM-HH:MM "
            "[time zone], e.g. '#news=22:00-07:00 Europe/London'"
        )
    start_h, start_m, end_h, end_m, zone = found.groups()
    try:
        start, end = time(int(start_h), int(start_m)), time(int(end_h), int(end_m))
    except ValueError as exc:
        raise ValueError(f"{channel}={window.strip()!r}: {exc}") from exc
    if start == end:
        raise ValueError(f"{channel}={window.strip()!r}: the start and the end are the same")
    zone = zone or "UTC"
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{channel}: {zone!r} is not a time zone; use an IANA name such as Europe/London"
        ) from exc
    return QuietHours(channel, start, end, zone)
