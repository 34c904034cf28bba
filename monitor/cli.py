"""The ``monitor`` command: the service, one-off cycles, and the rule author's tools.

Only this module (and ``service``) builds real adapters from Settings. Any
MonitorError is printed as one line on stderr with exit status 1 (a traceback
only with ``--debug``); usage errors exit with status 2.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monitor import __version__
from monitor.config import Settings, format_duration, load_settings, parse_duration
from monitor.errors import ConfigError, InputError, MonitorError, RuleProblem, StoreError
from monitor.logs import log_to_stderr, secret_parts
from monitor.model import Article, FeedSpec

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
            for_digests = sum(store.held_for_digest().values())
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
    if for_digests:
        # A cron job running poll --once has no digest schedule: `monitor digest send` is it.
        click.echo(
            f"{for_digests} {'match waits' if for_digests == 1 else 'matches wait'} for a digest; "
            "poll --once sends no digests: `monitor digest send` sends them"
        )


# ---------------------------------------------------------------- digests, silences


@main.group()
def digest() -> None:
    """Digests: the matches of rules with `delivery: {digest: ...}`, as one message."""


@digest.command("send")
@click.option("--rule", "rule_id", help="Only this rule's digest (default: every rule's).")
@pass_app
def digest_send(app: AppContext, rule_id: str | None) -> None:
    """Send the digests now, whatever their schedule (for cron; `monitor run` schedules them)."""
    from monitor.service import Service

    settings = app.settings
    with setup_logging(settings, app.debug), open_store(settings) as store:
        waiting = store.held_for_digest(rule_id)
        service = Service(settings, store)
        try:
            report = service.send_digest(rule_id)
        finally:
            service.close()
    if not waiting and not report.sent:
        click.echo(f"no matches wait for {f'the digest of {rule_id}' if rule_id else 'a digest'}")
        return
    click.echo(
        f"digests: {report.sent} sent ({report.matches} matches), "
        f"{report.retrying} to retry, {report.failed} failed"
    )
    if report.retrying or report.failed:
        sys.exit(1)


@main.group()
def silence() -> None:
    """Silences: matches they cover are stored and counted, not alerted."""


@silence.command("add")
@click.option("--rule", "rule_id", help="Matches of this rule id.")
@click.option("--feed", "feed_url", help="Articles of this feed URL.")
@click.option("--domain", help="Articles linking to this domain (and its subdomains).")
@click.option("--channel", help="Alerts to this channel (#name).")
@click.option("--for", "duration", required=True, type=DURATION, help="How long: 90m, 2h, 3d.")
@click.option("--reason", required=True, help="Why, for whoever reads `silence list`.")
@pass_app
def silence_add(
    app: AppContext,
    rule_id: str | None,
    feed_url: str | None,
    domain: str | None,
    channel: str | None,
    duration: timedelta,
    reason: str,
) -> None:
    """Silence matches for a while; every criterion given must hold. Ends on its own."""
    if not any((rule_id, feed_url, domain, channel)):
        raise click.UsageError("name what to silence: --rule, --feed, --domain or --channel")
    if duration <= timedelta(0):
        raise click.UsageError("--for must be longer than 0")
    now = datetime.now(UTC)
    with open_store(app.settings) as store:
        added = store.add_silence(
            reason=reason,
            now=now,
            until=now + duration,
            rule_id=rule_id,
            feed_url=feed_url,
            domain=domain,
            channel=channel,
        )
    click.echo(f"silence #{added.id}: {added.scope} until {format_time(added.expires_at)}")


@silence.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also the silences that ended.")
@pass_app
def silence_list(app: AppContext, show_all: bool) -> None:
    """Silences in force (with --all, every one), with how many matches each held back."""
    now = datetime.now(UTC)
    with open_store(app.settings) as store:
        found = store.silences(now, ended=show_all)
    if not found:
        click.echo("no silences" if show_all else "no silences in force")
        return
    for item in found:
        ends = item.removed_at if item.removed_at is not None else item.expires_at
        when = "until" if item.active(now) else "ended"
        click.echo(
            f"#{item.id}  [{item.state(now)}] {when} {format_time(ends)}  {item.scope}  "
            f"held {item.held}"
        )
        click.echo(f"    reason: {item.reason}")


@silence.command("remove")
@click.argument("silence_id", type=int)
@pass_app
def silence_remove(app: AppContext, silence_id: int) -> None:
    """End a silence now; the matches it held stay stored and are not sent."""
    with open_store(app.settings) as store:
        removed = store.remove_silence(silence_id, datetime.now(UTC))
    if removed is None:
        fail(f"no silence #{silence_id} in force (`monitor silence list --all` shows them all)")
    click.echo(f"silence #{removed.id} removed: {removed.scope}, held {removed.held}")


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
        dryrun.print_json(results)
    else:
        dryrun.print_table(results, show_all=show_all, regexes=dryrun.regex_terms(live.ruleset))


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
    "--input",
    "labels",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="JSON Lines with title, optional summary and lang, and label flag|ignore|ambiguous.",
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
    """Manage the feeds being watched: the feeds file is the list, the database follows it."""


@feeds.command("list")
@click.option(
    "--format", "output", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@click.option("--failing", is_flag=True, help="Only feeds failing or needing attention.")
@pass_app
def feeds_list(app: AppContext, output: str, failing: bool) -> None:
    """Every feed: status (ok, failing since, needs attention), last success, last error,
    errors in a row, next poll and items per day (the last 7 days).

    A table on a terminal, plain lines when piped, JSON Lines with --format json.
    """
    from monitor import feedlist

    now = datetime.now(UTC)
    with open_store(app.settings) as store:
        states = store.feeds()
        per_day = store.items_per_day(now - feedlist.ACTIVITY_WINDOW, now)
    rows = [feedlist.FeedRow(feed, per_day.get(feed.url, 0.0)) for feed in states]
    if failing:
        rows = [row for row in rows if row.failing]
    if output == "json":
        for row in rows:
            click.echo(json.dumps(feedlist.as_json(row), ensure_ascii=False))
    elif not states:
        click.echo("no feeds yet: `monitor feeds add URL`, then `monitor poll --once`")
    elif not rows:
        click.echo(f"no failing feeds ({len(states)} in all)")
    else:
        feedlist.print_rows(rows)


@feeds.command("add")
@click.argument("url")
@click.option("--name", default="", help="Shown in alerts.")
@click.option("--tag", "tags", multiple=True, help="A tag rules can filter on (repeatable).")
@click.option(
    "--interval", help="How often to poll (90s, 15m, 2h); default MONITOR_POLL_INTERVAL, adaptive."
)
@pass_app
def feeds_add(
    app: AppContext, url: str, name: str, tags: tuple[str, ...], interval: str | None
) -> None:
    """Add a feed to the feeds file (comments and order kept) and to the database."""
    from monitor.feeds.catalog import MIN_INTERVAL, url_problem
    from monitor.feeds.editor import add_feeds
    from monitor.model import FeedSpec

    path, text, current = read_feeds_file(app.settings)
    url = url.strip()
    problem = url_problem(url)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="URL")
    if interval is not None:
        try:
            seconds = parse_duration(interval)
        except ValueError as exc:
            raise click.BadParameter(f"{exc} (got {interval!r})", param_hint="--interval") from exc
        if seconds < MIN_INTERVAL:
            raise click.BadParameter(f"must be at least {MIN_INTERVAL:g}s", param_hint="--interval")
    if any(feed.url == url for feed in current):
        fail(f"{path}: {url} is already in the feeds file; `monitor feeds list` shows it")
    spec = FeedSpec(url=url, name=name.strip(), tags=tags)
    written = write_feeds_file(app.settings, path, add_feeds(text, [spec], [interval]))
    click.echo(f"{path}: added {url}; {len(written)} feeds")


@feeds.command("remove")
@click.argument("url")
@pass_app
def feeds_remove(app: AppContext, url: str) -> None:
    """Remove a feed from the feeds file; the database keeps its history, marked removed."""
    from monitor.feeds.editor import remove_feed

    path, text, _ = read_feeds_file(app.settings)
    changed = remove_feed(text, url.strip())
    if changed is None:
        fail(f"{path}: no feed {url.strip()} in the feeds file (`monitor feeds list` shows them)")
    written = write_feeds_file(app.settings, path, changed)
    click.echo(f"{path}: removed {url.strip()}; {len(written)} feeds")


@feeds.command("import")
@click.argument("opml", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
def feeds_import(app: AppContext, opml: Path) -> None:
    """Add the feeds of an OPML file (a feed reader's export); categories become tags.

    Feeds already in the feeds file are left as they are; outlines that are not usable
    feeds are listed on stderr and skipped.
    """
    from monitor.feeds.editor import add_feeds
    from monitor.feeds.opml import read_opml

    path, text, current = read_feeds_file(app.settings)
    try:
        data = opml.read_bytes()
    except OSError as exc:
        raise InputError(f"{opml}: cannot read: {exc.strerror}") from exc
    listed = read_opml(data, str(opml))
    for reason in listed.skipped:
        click.echo(f"{opml}: skipped {reason}", err=True)
    known = {feed.url for feed in current}
    new = [feed for feed in listed.feeds if feed.url not in known]
    if new:
        write_feeds_file(app.settings, path, add_feeds(text, new, [None] * len(new)))
    click.echo(
        f"{path}: imported {len(new)} feeds from {opml} "
        f"({len(listed.feeds) - len(new)} already there, {len(listed.skipped)} skipped)"
    )


@feeds.command("export")
@click.option(
    "--format", "output", type=click.Choice(["opml", "yaml"]), default="opml", show_default=True
)
@pass_app
def feeds_export(app: AppContext, output: str) -> None:
    """Print the feeds file's feeds as OPML (for feed readers) or as a clean feeds file."""
    from monitor.feeds.editor import add_feeds
    from monitor.feeds.opml import write_opml

    _, _, current = read_feeds_file(app.settings)
    if output == "opml":
        document = write_opml(current, "media-monitor feeds", datetime.now(UTC))
        click.echo(document.decode("utf-8"), nl=False)
    else:
        intervals = [None if f.interval is None else format_duration(f.interval) for f in current]
        click.echo(add_feeds("", current, intervals), nl=False)


def read_feeds_file(settings: Settings) -> tuple[Path, str, tuple[FeedSpec, ...]]:
    """The feeds file's path, text and feeds; a missing or broken file stops the command."""
    from monitor.feeds.catalog import load_feeds

    path = settings.feeds_file
    if path is None:
        raise ConfigError(
            "MONITOR_FEEDS", "is empty (no feeds file); set it to the feeds file to manage"
        )
    if not path.is_file():
        raise ConfigError(
            "MONITOR_FEEDS",
            f"no feeds file at {path.absolute()}; create it with the line `feeds: []`, "
            "or set MONITOR_FEEDS to its path",
        )
    current = load_feeds(path)  # a broken file is reported whole, and left alone
    return path, path.read_text(encoding="utf-8-sig"), current


def write_feeds_file(settings: Settings, path: Path, text: str) -> tuple[FeedSpec, ...]:
    """Replace the feeds file with `text` at once (checked first), then sync the database.

    The file is the source of truth, so it is written even when the database cannot be
    reached: `monitor run` and `monitor poll` sync it whenever the file changes.
    """
    from monitor.feeds.catalog import load_feeds

    draft = path.with_name(f".{path.name}.{os.getpid()}.new")
    drafted = False
    try:
        draft.write_text(text, encoding="utf-8")
        drafted = True
        shutil.copymode(path, draft)
        try:
            written = load_feeds(draft)
        except ConfigError as exc:  # a bug if ever: the edit made the file invalid
            raise ConfigError(
                "MONITOR_FEEDS", f"{path}: not changed, the edit would break it: {exc}"
            ) from exc
        os.replace(draft, path)
    except OSError as exc:
        raise ConfigError(
            "MONITOR_FEEDS", f"cannot write {path} ({exc.strerror}); check its folder's permissions"
        ) from exc
    finally:
        if drafted:
            draft.unlink(missing_ok=True)  # gone already once it replaced the file
    try:
        with open_store(settings) as store:
            store.sync_feeds(written, datetime.now(UTC))
    except StoreError as exc:
        click.echo(f"warning: {path} changed; the database follows when it is reachable: {exc}",
                   err=True)  # fmt: skip
    return written


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
        state = row.delivery_status or "not alerted"
        if row.hold is not None and not (row.hold.released and row.hold.digest_id is None):
            state = str(row.hold)  # queued after quiet hours: the alert's own state tells
        click.echo(
            f"{format_time(row.created_at)}  {row.match.severity:<8} {row.match.rule_id}  [{state}]"
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
