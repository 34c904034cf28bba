"""What `/healthz` answers: is this worker doing its job, judged from what it last did.

Pure: the service gathers the facts (a database ping, the scheduler's state, when the
last poll cycle finished) and `assess` turns them into a verdict a load balancer, Docker
or Kubernetes can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    problems: tuple[str, ...]
    details: dict[str, Any]

    def body(self) -> dict[str, Any]:
        return {"status": "ok" if self.ok else "failing", "problems": list(self.problems)} | (
            self.details
        )


def assess(
    now: datetime,
    *,
    database_error: str | None,
    scheduler_running: bool,
    started_at: datetime,
    last_cycle_at: datetime | None,
    stale_after: timedelta,
) -> Health:
    """Failing when the database does not answer, the scheduler stopped, or no poll cycle
    finished within ``stale_after`` (counted from the start until the first one has)."""
    problems: list[str] = []
    if database_error is not None:
        problems.append(f"database: {database_error}")
    if not scheduler_running:
        problems.append("scheduler: not running")
    since = last_cycle_at or started_at
    age = (now - since).total_seconds()
    if now - since > stale_after:
        what = "the last poll cycle finished" if last_cycle_at else "started, and no cycle finished"
        problems.append(
            f"poll: {what} {age:.0f}s ago (MONITOR_HEALTH_STALE_AFTER is"
            f" {stale_after.total_seconds():.0f}s)"
        )
    details = {
        "database": "ok" if database_error is None else "unreachable",
        "scheduler": "running" if scheduler_running else "stopped",
        "last_cycle_at": last_cycle_at.isoformat() if last_cycle_at else None,
        "last_cycle_age_seconds": round(age, 1) if last_cycle_at else None,
        "stale_after_seconds": stale_after.total_seconds(),
    }
    return Health(not problems, tuple(problems), details)
