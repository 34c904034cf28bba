"""The ``monitor`` command: the service, one-off cycles, and the rule author's tools.

Only this module (and ``service``) builds real adapters from Settings. Any
MonitorError is printed as one line on stderr with exit status 1 (a traceback
only with ``--debug``); usage errors exit with status 2.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__
from monitor.config import Settings, load_settings, parse_duration
from monitor.errors import ConfigError, MonitorError, RuleProblem
from monitor.logs import log_to_stderr, secret_parts
from monitor.model import Article

if TYPE_CHECKING:
    from monitor.store.store import DeliveryInfo, Store

log = logging.getLogger("monitor")


@dataclass(slots=True)
class AppContext:
    debug: bool
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.5
    """A look-back such as 90m, 12h or 30d, as a timedelta (read as every duration is)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return timedelta(seconds=parse_duration(value))
        except ValueError as exc:
            self.fail(f"{exc} (got {value!r})", param, ctx)


DURATION = Duration()


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class MonitorGroup(click.Group):
    """Turns a MonitorError anywhere below into one clear line and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MonitorError as exc:
            app = ctx.find_object(AppContext)
            if app is not None and app.debug:
                raise
            fail(str(exc))


@click.group(cls=MonitorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="media-monitor")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """media-monitor: watch news feeds, match YAML rules, alert Slack with the reason."""
    ctx.obj = AppContext(debug=debug)


def setup_logging(settings: Settings, debug: bool) -> AbstractContextManager[None]:
    """Log lines on stderr while a command runs; --debug shows everything."""
    secrets = secret_parts(settings.slack_bot_token, settings.slack_webhook_url)
    return log_to_stderr("DEBUG" if debug else settings.log_level, settings.log_format, secrets)


# ---------------------------------------------------------------- the service


@main.command()
@pass_app
def run(app: AppContext) -> None:
    """Run the service: poll due feeds, send alerts, reload changed rules, until stopped."""
    from monitor.service import Service, check_sources, describe_sender, run_forever

    settings = app.settings
    with setup_logging(settings, app.debug):
        check_sources(settings)
        check_slack_token(settings)
        with open_store(settings) as store:
            service = Service(settings, store)
            service.start()
            log.info(
                "media-monitor %s: %d feeds, %d rules, database %s, alerts to %s; Ctrl-C stops",
                __version__,
                sum(1 for feed in store.feeds() if feed.active),
                len(service.rules.ruleset.rules),
                store.location,
                describe_sender(settings),
            )
            run_forever(service)


def check_slack_token(settings: Settings) -> None:
    """A wrong token stops the service at start; Slack being unreachable does not (alerts wait)."""
    from monitor.notify.slack import check_slack

    if not settings.slack_bot_token:
        return
    try:
        identity = check_slack(settings.slack_bot_token, base_url=settings.slack_api_url)
    except ConfigError as exc:
        if exc.setting != "SLACK_API_URL":
            raise
        log.warning("%s; alerts stay pending until Slack answers", exc)
        return
    log.info("Slack: posting as %s in workspace %s", identity.user, identity.team)


@main.command()
@click.option("--once", is_flag=True, help="Run one full cycle and exit (required).")
@click.option(
    "--all",
    "every",
    is_flag=True,
    help="Poll every active feed now, due or not (skips intervals, backoff and Retry-After).",
)
@pass_app
def poll(app: AppContext, once: bool, every: bool) -> None:
    """One cycle over the due feeds: fetch, match, store, deliver; then print a summary.

    Due means as `monitor run` would poll them, so a cron job running this respects each
    feed's interval, its backoff and its host's Retry-After. Each failure is a log line on
    stderr as it happens; the one summary goes to stdout.
    """
    from monitor.service import Service, check_sources, describe_delivery

    if not once:
        raise click.UsageError("monitor poll needs --once; `monitor run` runs the service")
    settings = app.settings
    with setup_logging(settings, app.debug):
        check_sources(settings)
        with open_store(settings) as store:
            service = Service(settings, store)
            service.start()
            try:
                polled = service.poll(every=every)
                delivered = service.deliver()
            finally:
                service.close()
            waiting = [
                feed.next_poll_at
                for feed in store.feeds()
                if feed.active
                and feed.next_poll_at is not None
                and feed.url not in {report.url for report in polled.feeds}
            ]
        if waiting:
            log.info(
                "%d %s not due yet (the next at %s); `monitor poll --once --all` polls them now",
                len(waiting),
                "feed is" if len(waiting) == 1 else "feeds are",
                format_time(min(waiting)),
            )
    click.echo(
        f"polled {len(polled.feeds)} feeds ({polled.count('updated')} updated, "
        f"{polled.count('not-modified') + polled.count('unchanged')} unchanged, "
        f"{len(polled.failed)} failed): {polled.new_articles} new articles, "
        f"{polled.new_matches} matches; alerts: {describe_delivery(delivered)}"
    )


# ---------------------------------------------------------------- rules


@main.group()
def rules() -> None:
    """Check, try and evaluate rule files."""


@rules.command("check")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@pass_app
def rules_check(app: AppContext, path: Path | None) -> None:
    """Validate rule files and run their examples (exit 0 valid, 1 invalid, 2 usage error)."""
    from monitor.matching import check_examples, load_rules

    target = path or rules_path(app.settings)
    loaded = load_rules(target)
    problems = sorted(
        [*loaded.problems, *check_examples(loaded.ruleset)],
        key=lambda problem: (problem.follow_on, problem.file, problem.line, problem.column),
    )
    for problem in problems:
        click.echo(str(problem))
    errors = sum(1 for problem in problems if problem.severity == "error")
    warnings = len(problems) - errors
    rule_count = len(loaded.ruleset.rules)
    if errors:
        click.echo(f"{target}: {errors} error(s), {warnings} warning(s)", err=True)
        sys.exit(1)
    click.echo(
        f"{target}: {rule_count} rules in {len(loaded.files)} files, "
        f"{warnings} warning(s), examples pass"
    )


F = TypeVar("F", bound=Callable[..., Any])


def stored_article_options(default_since: str) -> Callable[[F], F]:
    """--since, --feed and --limit: which stored articles a rules command works on."""

    def decorate(command: F) -> F:
        command = click.option(
            "--limit", type=click.IntRange(min=1), help="At most this many articles."
        )(command)
        command = click.option("--feed", "feed_url", help="Stored articles: only this feed URL.")(
            command
        )
        return click.option(
            "--since",
            default=default_since,
            show_default=True,
            type=DURATION,
            help="Stored articles published this recently (90m, 12h, 30d).",
        )(command)

    return decorate


@rules.command("test")
@click.option(
    "--input",
    "source",
    metavar="PATH|URL",
    help="A feed file (RSS, Atom, JSON Feed), a feed URL, or JSON Lines of articles. "
    "Without it, articles already stored are used.",
)
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Rules folder or file to try (default: MONITOR_RULES).",
)
@stored_article_options(default_since="30d")
@click.option(
    "--diff",
    "changed",
    type=click.Path(exists=True, path_type=Path),
    help="A changed rules folder: show which articles it would start or stop flagging.",
)
@click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--all", "show_all", is_flag=True, help="Table: list articles that matched nothing.")
@pass_app
def rules_test(
    app: AppContext,
    source: str | None,
    rules_dir: Path | None,
    since: timedelta,
    feed_url: str | None,
    limit: int | None,
    changed: Path | None,
    output: str,
    show_all: bool,
) -> None:
    """Dry run: match rules against articles; nothing is stored and nothing is sent."""
    from monitor import dryrun
    from monitor.matching import load_rules
    from monitor.reader import match_articles

    settings = app.settings
    live = load_rules(rules_dir or rules_path(settings))
    report_problems(live.problems)
    if source is not None:
        articles = dryrun.read_articles(source, settings)[:limit]
    else:
        articles = stored_articles(settings, since, feed_url, limit)
    if changed is not None:
        candidate = load_rules(changed)
        report_problems(candidate.problems)
        diffs = dryrun.diff_rules(live.ruleset, candidate.ruleset, articles)
        dryrun.print_diff(diffs, output, len(articles))
        return
    results = match_articles(live.ruleset, articles)
    if output == "json":
        for article, matches in results:
            click.echo(json.dumps(dryrun.result_json(article, matches), ensure_ascii=False))
    else:
        dryrun.print_table(results, show_all=show_all)


@rules.command("apply")
@stored_article_options(default_since="7d")
@click.option(
    "--alert", is_flag=True, help="Also queue alerts for the new matches (default: record only)."
)
@pass_app
def rules_apply(
    app: AppContext, since: timedelta, feed_url: str | None, limit: int | None, alert: bool
) -> None:
    """Apply the live rules to stored articles and record the matches they lack.

    For a rule added or changed after the articles were polled. Matches already stored are
    kept; alerts are queued only with --alert, once per article and channel.
    """
    from monitor.matching import load_rules
    from monitor.reader import match_articles

    settings = app.settings
    live = load_rules(rules_path(settings))
    report_problems(live.problems)
    with open_store(settings) as store:
        stored = store.stored_articles(datetime.now(UTC) - since, feed_url, limit)
        results = match_articles(live.ruleset, [item.article for item in stored])
        saved = store.record_backfill(
            [(item.id, found) for item, (_, found) in zip(stored, results, strict=True)],
            datetime.now(UTC),
            alert=alert,
        )
    for rule_id, count in saved.by_rule.items():
        click.echo(f"{rule_id}: {count} new")
    alerts = (
        f"{saved.new_deliveries} alerts queued"
        if alert
        else "no alerts queued (--alert queues them)"
    )
    click.echo(f"{len(stored)} articles: {saved.new_matches} new matches, {alerts}")


@rules.command("eval")
@click.option(
    "--labels",
    "labels",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="JSON Lines with title, optional summary, and label flag|ignore.",
)
@click.option(
    "--rules",
    "rules_dir",
    type=click.Path(exists=True, path_type=Path),
    help="Rules folder or file (default: MONITOR_RULES).",
)
@click.option(
    "--format", "output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@pass_app
def rules_eval(app: AppContext, labels: Path, rules_dir: Path | None, output: str) -> None:
    """Precision and recall of the rules on a labelled set, with the misclassified items."""
    from monitor import dryrun
    from monitor.matching import evaluate, load_rules

    loaded = load_rules(rules_dir or rules_path(app.settings))
    report_problems(loaded.problems)
    items = dryrun.read_labelled(labels)
    dryrun.print_eval(evaluate(loaded.ruleset, items), output, items)


@rules.command("schema")
def rules_schema() -> None:
    """Print the JSON Schema of rule files (for editors)."""
    from monitor.matching import rule_json_schema

    click.echo(json.dumps(rule_json_schema(), indent=2))


def rules_path(settings: Settings) -> Path:
    if settings.rules_dir is None:
        raise ConfigError("MONITOR_RULES", "is empty (no rules); name a rules folder")
    return settings.rules_dir


def report_problems(problems: Sequence[RuleProblem]) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)
    if any(problem.severity == "error" for problem in problems):
        click.echo("warning: rules with errors are left out of this run", err=True)


def stored_articles(
    settings: Settings, since: timedelta, feed_url: str | None, limit: int | None
) -> list[Article]:
    with open_store(settings, upgrade=False) as store:
        return store.articles(datetime.now(UTC) - since, feed_url, limit)


# ---------------------------------------------------------------- feeds, matches, db


@main.group()
def feeds() -> None:
    """Inspect the feeds being watched."""


@feeds.command("list")
@pass_app
def feeds_list(app: AppContext) -> None:
    """Every feed with its state (ok, failing since, needs attention), polls, move, last error."""
    with open_store(app.settings) as store:
        states = store.feeds()
    if not states:
        click.echo("no feeds yet: add some to the feeds file and run `monitor poll --once`")
        return
    for feed in states:
        status = feed.health
        if status == "attention":
            status = f"needs attention: {feed.attention}"
        elif status == "failing":
            since = f" since {format_time(feed.failing_since)}" if feed.failing_since else ""
            status = f"failing{since} ({feed.error_count} in a row)"
        click.echo(f"{feed.url}  [{status}]")
        details = [
            f"name: {feed.name}" if feed.name else "",
            f"last poll: {format_time(feed.last_polled_at)}",
            f"next: {format_time(feed.next_poll_at)}" if feed.active else "",
        ]
        click.echo("    " + "; ".join(part for part in details if part))
        if feed.fetch_url:
            click.echo(f"    moved to {feed.fetch_url}; update the feeds file")
        if feed.last_error:
            click.echo(f"    last error: {feed.last_error}")


@main.group()
def matches() -> None:
    """Inspect stored matches."""


@matches.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--since", type=DURATION, help="Only matches newer than this (90m, 12h, 30d).")
@pass_app
def matches_list(app: AppContext, limit: int, since: timedelta | None) -> None:
    """The newest matches, with rule, severity, delivery state and matched terms."""
    cutoff = datetime.now(UTC) - since if since else None
    with open_store(app.settings) as store:
        rows = store.recent_matches(limit=limit, since=cutoff)
    if not rows:
        click.echo("no matches yet")
        return
    for row in rows:
        click.echo(
            f"{format_time(row.created_at)}  {row.match.severity:<8} {row.match.rule_id}  "
            f"[{row.delivery_status or 'not alerted'}]"
        )
        click.echo(f"    {row.article.title}")
        if row.article.link:
            click.echo(f"    {row.article.link}")
        click.echo(f"    terms: {', '.join(row.match.matched_terms)}")
        if row.next_attempt_at is not None:
            click.echo(f"    next attempt: {format_time(row.next_attempt_at)}")
        if row.delivery_reason:
            click.echo(f"    reason: {row.delivery_reason}")


@main.group()
def deliveries() -> None:
    """Inspect alerts waiting, failed or expired, and send failed ones again."""


@deliveries.command("list")
@click.option("--failed", is_flag=True, help="Only failed ones (and expired: not sent).")
@click.option("--pending", is_flag=True, help="Only those waiting (uncertain ones included).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1))
@pass_app
def deliveries_list(app: AppContext, failed: bool, pending: bool, output: str, limit: int) -> None:
    """Alerts not sent, oldest first: channel, rule, headline, state, reason, attempts."""
    states = [*(("failed", "expired") if failed else ()), *(("pending",) if pending else ())]
    with open_store(app.settings) as store:
        rows = store.list_deliveries(states or ("pending", "failed", "expired"), limit=limit)
    if output == "json":
        click.echo(json.dumps([delivery_json(row) for row in rows], indent=2))
        return
    if not rows:
        click.echo("no alerts waiting, failed or expired")
        return
    for row in rows:
        channel = row.channel or "(default channel)"
        click.echo(f"#{row.id}  {row.state:<9} {channel}  {', '.join(row.rules) or '-'}")
        click.echo(f"    {row.headline}")
        details = [f"found {format_time(row.created_at)}", f"attempts: {row.attempts}"]
        if row.next_attempt_at is not None:
            details.append(f"next attempt: {format_time(row.next_attempt_at)}")
        click.echo("    " + "; ".join(details))
        if row.reason:
            click.echo(f"    reason: {row.reason}")


def delivery_json(row: DeliveryInfo) -> dict[str, Any]:
    """One delivery as `deliveries list --format json` prints it."""
    return {
        "id": row.id,
        "channel": row.channel,
        "rules": list(row.rules),
        "headline": row.headline,
        "state": row.state,
        "reason": row.reason,
        "attempts": row.attempts,
        "uncertain_sends": row.uncertain_sends,
        "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else None,
        "created_at": row.created_at.isoformat(),
    }


@deliveries.command("retry")
@click.option("--channel", help="Only failed alerts to this channel (#name or name).")
@click.option("--id", "delivery_id", type=int, help="Only this alert (its number in `list`).")
@pass_app
def deliveries_retry(app: AppContext, channel: str | None, delivery_id: int | None) -> None:
    """Queue failed alerts again, once their cause is fixed; the next run sends them."""
    with open_store(app.settings) as store:
        count = store.requeue_failed(datetime.now(UTC), channel=channel, delivery_id=delivery_id)
    noun = "alert" if count == 1 else "alerts"
    click.echo(f"{count} failed {noun} queued again")


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Create or migrate the database schema to the newest revision."""
    with open_store(app.settings) as store:
        click.echo(f"{store.location}: schema at revision {store.revision()}")


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask before undoing migrations.")
@pass_app
def db_downgrade(app: AppContext, revision: str, yes: bool) -> None:
    """Undo migrations down to REVISION (`base` drops every table); asks first unless --yes.

    For going back to an older media-monitor: run it with the newer one, which knows how.
    """
    with open_store(app.settings, upgrade=False) as store:
        if not yes:
            click.confirm(
                f"Downgrade {store.location} from revision {store.revision() or 'base'} to "
                f"{revision}? Undoing a migration can drop tables and their data",
                abort=True,
            )
        store.downgrade(revision)
        click.echo(f"{store.location}: schema at revision {store.revision() or 'base'}")


@db.command("prune")
@click.option(
    "--older-than",
    type=DURATION,
    help="Remove articles not in their feed for this long (default: MONITOR_RETENTION).",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@pass_app
def db_prune(app: AppContext, older_than: timedelta | None, dry_run: bool) -> None:
    """Remove old articles with their matches and alerts, as `monitor run` does hourly.

    Kept whatever their age: articles their feed still carries (so they never alert again
    as new) and alerts not delivered yet.
    """
    from monitor.service import describe_pruned

    if older_than is None:
        if not app.settings.retention:
            fail("MONITOR_RETENTION is 0 (keep everything); pass --older-than to prune anyway")
        older_than = timedelta(seconds=app.settings.retention)
    cutoff = datetime.now(UTC) - older_than
    with open_store(app.settings) as store:
        counts = store.prune(cutoff, dry_run=dry_run)
        location = store.location
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{location}: {verb} {describe_pruned(counts)} not seen since {cutoff:%Y-%m-%d %H:%M} UTC"
    )


@db.command("current")
@pass_app
def db_current(app: AppContext) -> None:
    """Print the database's schema revision and the newest one this media-monitor has."""
    from monitor.store.migrate import head_revision

    with open_store(app.settings, upgrade=False) as store:
        current = store.revision()
        location = store.location
    newest = f"this media-monitor's newest is {head_revision()}"
    if current is None:
        click.echo(f"{location}: no schema yet; {newest} (`monitor db upgrade` creates it)")
    else:
        click.echo(f"{location}: schema at revision {current}; {newest}")


# ---------------------------------------------------------------- helpers


@contextmanager
def open_store(settings: Settings, *, upgrade: bool = True) -> Iterator[Store]:
    """The store, migrated to the newest schema unless `upgrade` is False.

    Store.open refuses a database at a revision this code does not know, whatever `upgrade`.
    """
    from monitor.store.store import Store

    store = Store.open(settings.database_url)
    try:
        if upgrade:
            store.upgrade()
        yield store
    finally:
        store.close()


def format_time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


if __name__ == "__main__":  # pragma: no cover
    main()
