"""A digest's schedule: a crontab line in a time zone, read by APScheduler's CronTrigger.

Kept apart from `monitor.digest` so the rule schema can validate a schedule at load
without importing the renderer. Pure: a trigger only computes fire times.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger


def check_crontab(expression: str) -> None:
    """ValueError naming the problem when ``expression`` is not a five-field crontab line."""
    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except ValueError as exc:
        raise ValueError(
            f"{expression!r} is not a crontab schedule ({exc}); write five fields: "
            "minute hour day month day-of-week, e.g. '0 9 * * mon-fri'"
        ) from exc


def check_timezone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{name!r} is not a time zone; use an IANA name such as Europe/Berlin or UTC"
        ) from exc


def digest_trigger(expression: str, timezone: str) -> CronTrigger:
    """The trigger of a schedule already validated at rule load."""
    return CronTrigger.from_crontab(expression, timezone=ZoneInfo(timezone))


def next_digest_at(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (None: the schedule never fires again)."""
    fire: datetime | None = trigger.get_next_fire_time(None, after)
    if fire is not None and fire <= after:
        fire = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    return fire
