"""What `monitor feeds list` shows of each feed: a rich table on a terminal, plain lines piped.

The rows are values built from the store's FeedState; the printers only lay them out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from monitor.errors import shorten
from monitor.store.store import FeedState

ACTIVITY_WINDOW = timedelta(days=7)  # items per day are counted over this
TABLE_ERROR = 60  # characters of the last error a table cell shows; JSON has all of it
_STYLES = {"ok": "green", "new": "cyan", "failing": "yellow", "attention": "bold red"}


@dataclass(frozen=True, slots=True)
class FeedRow:
    feed: FeedState
    items_per_day: float

    @property
    def failing(self) -> bool:
        return self.feed.health in ("failing", "attention")

    @property
    def status(self) -> str:
        """ok, new, removed, "failing since …", or "needs attention: …"."""
        feed = self.feed
        if feed.health == "attention":
            return f"needs attention: {feed.attention}"
        if feed.health == "failing":
            since = f" since {format_time(feed.failing_since)}" if feed.failing_since else ""
            return f"failing{since} ({feed.error_count} in a row)"
        return feed.health

    @property
    def next_poll(self) -> datetime | None:
        return self.feed.next_poll_at if self.feed.active else None


def as_json(row: FeedRow) -> dict[str, Any]:
    feed = row.feed
    return {
        "url": feed.url,
        "name": feed.name,
        "status": feed.health,
        "failing_since": _iso(feed.failing_since),
        "attention": feed.attention,
        "last_success": _iso(feed.last_success_at),
        "last_poll": _iso(feed.last_polled_at),
        "last_error": feed.last_error,
        "consecutive_errors": feed.error_count,
        "next_poll": _iso(row.next_poll),
        "items_per_day": round(row.items_per_day, 2),
        "moved_to": feed.fetch_url,
    }


def print_rows(rows: list[FeedRow]) -> None:
    """A table when stdout is a terminal, else two or three plain lines per feed."""
    console = Console()
    if console.is_terminal:
        console.print(_table(rows))
        return
    for item in rows:
        feed = item.feed
        click.echo(f"{feed.url}  [{item.status}]")
        details = [
            f"name: {feed.name}" if feed.name else "",
            f"last poll: {format_time(feed.last_polled_at)}",
            f"last success: {format_time(feed.last_success_at)}",
            f"next: {format_time(item.next_poll)}" if feed.active else "",
            f"{item.items_per_day:.1f} items/day",
        ]
        click.echo("    " + "; ".join(part for part in details if part))
        if feed.fetch_url:
            click.echo(f"    moved to {feed.fetch_url}; update the feeds file")
        if feed.last_error:
            click.echo(f"    last error: {feed.last_error}")


def _table(rows: list[FeedRow]) -> Table:
    table = Table(show_lines=False, expand=False)
    for heading in ("feed", "status", "last success", "errors", "next poll", "items/day"):
        table.add_column(heading, overflow="fold")
    table.add_column("last error", overflow="fold", max_width=TABLE_ERROR)
    for item in rows:
        feed = item.feed
        title = f"{feed.name}\n{feed.url}" if feed.name else feed.url
        if feed.fetch_url:
            title += f"\nmoved to {feed.fetch_url}"
        table.add_row(
            escape(title),  # neither URLs nor feed servers' words are rich markup
            f"[{_STYLES.get(feed.health, 'dim')}]{escape(item.status)}[/]",
            format_time(feed.last_success_at),
            str(feed.error_count),
            format_time(item.next_poll) if feed.active else "-",
            f"{item.items_per_day:.1f}",
            escape(shorten(feed.last_error or "", TABLE_ERROR)),
        )
    return table


def format_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None
