"""`monitor rules test` and `rules eval`: read articles from a file, URL or the store, match, show.

The dry run matches with ``reader.match_articles``, the function the live
service uses, so a rule behaves the same here and in production
(ElastAlert #2140). Nothing here stores or sends anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.config import Settings
from monitor.errors import FeedError, InputError
from monitor.feeds.links import absolute_link
from monitor.feeds.text import clean_text
from monitor.matching import EvalReport, LabelledArticle, LanguageScore, RuleScore, RuleSet
from monitor.matching.prominence import source_span
from monitor.model import Article, Match, TermHit
from monitor.reader import match_articles

CONTEXT_CHARS = 60
EXCERPT_CHARS = 240
HIGHLIGHT = "bold black on yellow"
JSONL_SOURCE = "jsonl:"


Result = tuple[Article, tuple[Match, ...]]


def read_articles(source: str, settings: Settings) -> list[Article]:
    """Articles from a feed URL, a feed file (RSS, Atom, JSON Feed) or a JSON Lines file."""
    if source.startswith(("http://", "https://")):
        return _fetch_articles(source, settings)
    path = Path(source)
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{source}: cannot read: {exc.strerror}") from exc
    if _looks_like_json_lines(path, body):
        return list(read_json_lines(path, body))
    from monitor.feeds.parse import parse_feed

    return list(
        parse_feed(
            body, url=path.resolve().as_uri(), headers={}, fetched_at=datetime.now(UTC)
        ).articles
    )


def _fetch_articles(url: str, settings: Settings) -> list[Article]:
    from monitor.feeds.fetch import Fetcher, FetchOptions, FetchRequest
    from monitor.feeds.parse import parse_feed

    async def fetch() -> bytes:
        async with Fetcher(FetchOptions.from_settings(settings)) as fetcher:
            # No validators are sent, so the answer is never a bodiless 304.
            return (await fetcher.fetch(FetchRequest(url))).body or b""

    try:
        body = asyncio.run(fetch())
    except FeedError as exc:
        raise InputError(str(exc)) from exc
    parsed = parse_feed(body, url=url, headers={}, fetched_at=datetime.now(UTC))
    return list(parsed.articles)


def _looks_like_json_lines(path: Path, body: bytes) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    text = body.lstrip()
    if not text.startswith(b"{"):
        return False
    try:  # a JSON Feed is one object over many lines; JSON Lines is one object per line
        json.loads(body)
    except ValueError:
        return True
    return False


def read_json_lines(path: Path, body: bytes) -> Iterable[Article]:
    """One Article per line: ``title``; optional ``summary``, ``link``, ``published``, ``id``."""
    now = datetime.now(UTC)
    for number, item in _json_objects(path, body):
        yield _article_from_json(path, number, item, now)


def _json_objects(path: Path, body: bytes) -> Iterable[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(body.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not valid JSON: {exc}") from exc
        if not isinstance(item, dict):
            raise InputError(f"{path}:{number}: each line must be a JSON object")
        yield number, item


def _article_from_json(path: Path, number: int, item: dict[str, Any], now: datetime) -> Article:
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise InputError(f"{path}:{number}: 'title' is required and must be text")
    summary = item.get("summary") or ""
    if not isinstance(summary, str):
        raise InputError(f"{path}:{number}: 'summary' must be text")
    link = absolute_link(item["link"], "") if isinstance(item.get("link"), str) else None
    published, dated = now, False
    if item.get("published"):
        text = str(item["published"]).strip()
        # Labelled sets often know only the month or year of a story.
        text += {4: "-01-01", 7: "-01"}.get(len(text), "") if text[:4].isdigit() else ""
        try:
            published = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InputError(
                f"{path}:{number}: 'published' must be an ISO 8601 date such as 2026-11-26 "
                f"or 2026-11-26T09:30:00Z"
            ) from exc
        published = published.replace(tzinfo=published.tzinfo or UTC).astimezone(UTC)
        dated = True
    entry_id = str(item.get("id") or link or _digest_id(title, summary))
    return Article(
        feed_url=JSONL_SOURCE + str(path),
        entry_id=entry_id,
        title=clean_text(title),
        summary=clean_text(summary),
        link=link,
        published=published,
        dated=dated,
        language=_language(item),
    )


def _language(item: dict[str, Any]) -> str | None:
    """`language`, else `lang` (labelled sets), as a lower-case primary subtag: "pt-BR" is "pt"."""
    for key in ("language", "lang"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip().lower().replace("_", "-").split("-")[0]
    return None


def _digest_id(title: str, summary: str) -> str:
    return "sha256:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()


def result_json(article: Article, matches: Sequence[Match]) -> dict[str, Any]:
    """One article's line of `rules test --format json`; `hits` says where each term was
    found and the article's own text there (a regex's match, a prefix's whole word)."""
    return {
        "id": article.entry_id,
        "title": article.title,
        "matches": [
            {
                "rule": match.rule_id,
                "terms": list(match.matched_terms),
                "hits": [
                    {
                        "term": hit.term,
                        "field": hit.field,
                        "text": hit.text,
                        "start": hit.start,
                        "end": hit.end,
                        "list": hit.list_name,
                    }
                    for hit in match.hits
                ],
            }
            for match in matches
        ],
    }


_JSON = json.JSONEncoder(ensure_ascii=False)  # json.dumps with options builds one per call
JSON_LINES_PER_WRITE = 1000  # click.echo flushes: one write per line would be a system call


def print_json(results: Iterable[Result]) -> None:
    """`rules test --format json`: one object per article, in input order."""
    encode = _JSON.encode
    lines: list[str] = []
    for article, matches in results:
        lines.append(encode(result_json(article, matches)))
        if len(lines) >= JSON_LINES_PER_WRITE:
            click.echo("\n".join(lines))
            lines.clear()
    if lines:
        click.echo("\n".join(lines))


def regex_terms(ruleset: RuleSet) -> frozenset[tuple[str, str | None]]:
    """(text, list) of the ruleset's regex terms: their explanations show what they found."""
    return frozenset(
        (term.text, term.list_name) for term in ruleset.index.terms if term.kind == "regex"
    )


def console() -> Console:
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


def highlighted(text: str, hits: Iterable[TermHit], field: str) -> Text:
    rich_text = Text(text)
    for hit in hits:
        if hit.field == field and 0 <= hit.start < hit.end <= len(text):
            rich_text.stylize(HIGHLIGHT, hit.start, hit.end)
    return rich_text


def excerpt(text: str, hits: Sequence[TermHit], field: str) -> Text | None:
    """The part of a long field around its first hit, every hit in it highlighted."""
    spans = sorted(
        (hit.start, hit.end) for hit in hits if hit.field == field and hit.end <= len(text)
    )
    if not spans:
        return None
    start = max(0, spans[0][0] - CONTEXT_CHARS)
    end = min(len(text), start + EXCERPT_CHARS)
    window = Text(("…" if start else "") + text[start:end] + ("…" if end < len(text) else ""))
    offset = 1 if start else 0
    for hit_start, hit_end in spans:
        if hit_start >= start and hit_end <= end:
            window.stylize(HIGHLIGHT, hit_start - start + offset, hit_end - start + offset)
    return window


def evidence(match: Match, regexes: frozenset[tuple[str, str | None]] = frozenset()) -> Text:
    """One rule's line: id, severity, and each term with the fields it was found in.

    A regex term (in `regexes`) is shown by the text it found, not its pattern, and a prefix
    term by the words it found beside it: `"bans" (ban*)`.
    """
    fields: dict[tuple[str, str | None], list[str]] = {}
    found: dict[tuple[str, str | None], list[str]] = {}
    for hit in match.hits:
        key = (hit.term, hit.list_name)
        found_in = fields.setdefault(key, [])
        if hit.field not in found_in:
            found_in.append(hit.field)
        texts = found.setdefault(key, [])
        if hit.text not in texts:
            texts.append(hit.text)
    labels = []
    for key, where in fields.items():
        term, list_name = key
        quoted = ", ".join(f'"{text}"' for text in found[key])
        if key in regexes:
            label = f"{quoted} (regex{f' in {list_name}' if list_name else ''})"
        elif term.endswith("*"):
            label = f"{quoted} ({term})"
        else:
            label = term
        labels.append(f"{label} [{', '.join(where)}]")
    text = Text()
    text.append(match.rule_id, style="bold")
    text.append(f" ({match.severity})\n  ")
    text.append(", ".join(labels))
    return text


def shown_hits(article: Article, hits: Iterable[TermHit]) -> list[TermHit]:
    """The hits with those in `lead` and `front` moved to the title and summary they show."""
    shown = []
    for hit in hits:
        span = source_span(article.title, article.summary, hit.field, hit.start, hit.end)
        if span is not None:
            shown.append(replace(hit, field=span[0], start=span[1], end=span[2]))
    return shown


def print_table(
    results: Sequence[Result],
    *,
    show_all: bool,
    regexes: frozenset[tuple[str, str | None]] = frozenset(),
) -> None:
    out = console()
    table = Table(show_lines=True, title="rules test (dry run: nothing stored or sent)")
    table.add_column("#", justify="right")
    table.add_column("article", ratio=3)
    table.add_column("rules and matched terms", ratio=2)
    for number, (article, matches) in enumerate(results, 1):
        if not matches and not show_all:
            continue
        hits = shown_hits(article, [hit for match in matches for hit in match.hits])
        cell = highlighted(article.title, hits, "title")
        for field, text in (("summary", article.summary), ("content", article.content)):
            context = excerpt(text, hits, field)
            if context is not None:
                cell.append(f"\n{field}: ", style="dim")
                cell.append(context)
        reasons = Text("\n").join(evidence(match, regexes) for match in matches)
        table.add_row(str(number), cell, reasons if matches else Text("no match", style="dim"))
    flagged = sum(1 for _, matches in results if matches)
    if table.row_count:
        out.print(table)
    out.print(f"{len(results)} articles, {flagged} matched")


@dataclass(frozen=True, slots=True)
class RuleDiff:
    article: Article
    started: tuple[str, ...]  # rule ids the changed rules add
    stopped: tuple[str, ...]  # rule ids the changed rules no longer match


def diff_rules(live: RuleSet, changed: RuleSet, articles: Sequence[Article]) -> list[RuleDiff]:
    """Articles whose set of matching rules differs between two rule versions."""
    diffs = []
    for (article, before), (_, after) in zip(
        match_articles(live, articles), match_articles(changed, articles), strict=True
    ):
        old = {match.rule_id for match in before}
        new = {match.rule_id for match in after}
        if old != new:
            diffs.append(RuleDiff(article, tuple(sorted(new - old)), tuple(sorted(old - new))))
    return diffs


def print_diff(diffs: Sequence[RuleDiff], output: str, total: int) -> None:
    if output == "json":
        for diff in diffs:
            click.echo(
                json.dumps(
                    {
                        "id": diff.article.entry_id,
                        "title": diff.article.title,
                        "started": list(diff.started),
                        "stopped": list(diff.stopped),
                    },
                    ensure_ascii=False,
                )
            )
        return
    for diff in diffs:
        for rule_id in diff.started:
            click.echo(f"+ {rule_id}: {diff.article.title}")
        for rule_id in diff.stopped:
            click.echo(f"- {rule_id}: {diff.article.title}")
    started = sum(1 for diff in diffs if diff.started)
    stopped = sum(1 for diff in diffs if diff.stopped)
    click.echo(
        f"{total} articles: the change starts flagging {started} and stops flagging {stopped}"
    )


LABELS = {"flag": True, "ignore": False, "ambiguous": False}


def read_labelled(path: Path) -> list[LabelledArticle]:
    """JSON Lines of articles with ``label`` (flag, ignore or ambiguous) and optionally
    ``rules`` (ids); other keys (``why``, ``cluster``, ``outlet``, ...) are ignored."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc
    now = datetime.now(UTC)
    items = []
    for number, item in _json_objects(path, body):
        label = item.get("label")
        if label not in LABELS:
            raise InputError(f'{path}:{number}: \'label\' must be "flag", "ignore" or "ambiguous"')
        expected = item.get("rules")
        if expected is not None and (
            not isinstance(expected, list) or not all(isinstance(rule, str) for rule in expected)
        ):
            raise InputError(f"{path}:{number}: 'rules' must be a list of rule ids")
        article = _article_from_json(path, number, item, now)
        article = replace(article, entry_id=f"{path.name}:{number}")
        items.append(
            LabelledArticle(
                article,
                LABELS[label],
                frozenset(expected) if expected is not None else None,
                ambiguous=label == "ambiguous",
            )
        )
    return items


def _ratio(value: float | None) -> str:
    return "    -" if value is None else f"{value:.3f}"


def _score_json(score: RuleScore) -> dict[str, Any]:
    return {
        "precision": score.precision,
        "recall": score.recall,
        "true_positives": score.true_positives,
        "false_positives": score.false_positives,
        "false_negatives": score.false_negatives,
    }


def print_eval(report: EvalReport, output: str, items: Sequence[LabelledArticle]) -> None:
    overall = report.overall
    ambiguous = len(report.ambiguous)
    flagged = report.flagged_items
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "overall": {
                        **_score_json(overall),
                        "articles": len(items),
                        "flag": flagged,
                        "ignore": len(items) - flagged - ambiguous,
                        "ambiguous": ambiguous,
                    },
                    "rules": [
                        {
                            "rule": score.rule_id,
                            "precision": score.precision,
                            "recall": score.recall,
                            "true_positives": score.true_positives,
                            "false_positives": score.false_positives,
                            "false_negatives": score.false_negatives,
                        }
                        for score in report.rules
                    ],
                    "misclassified": [
                        {
                            "title": wrong.title,
                            "id": wrong.entry_id,
                            "rule": wrong.rule_id,
                            "kind": wrong.kind,
                            "terms": list(wrong.matched_terms),
                        }
                        for wrong in report.misclassified
                    ],
                    "languages": [
                        {
                            "language": language.language,
                            "articles": language.flagged + language.ignored + language.ambiguous,
                            "flag": language.flagged,
                            "ignore": language.ignored,
                            "ambiguous": language.ambiguous,
                            **_score_json(language.score),
                        }
                        for language in report.languages
                    ],
                    "ambiguous": [
                        {"title": item.title, "id": item.entry_id, "rules": list(item.rule_ids)}
                        for item in report.ambiguous
                    ],
                },
                ensure_ascii=False,
            )
        )
        return
    # Per-rule recall needs items that name their rules; flag/ignore alone cannot give it.
    rules_named = any(item.expected is not None for item in items)
    width = max([len("rule"), *(len(score.rule_id) for score in report.rules)])
    click.echo(f"{'rule':<{width}}  matched  precision  recall  share of flagged")
    for score in report.rules:
        matched = score.true_positives + score.false_positives
        share = (score.true_positives / report.flagged_items) if report.flagged_items else None
        click.echo(
            f"{score.rule_id:<{width}}  {matched:>7}  {_ratio(score.precision):>9}  "
            f"{_ratio(score.recall if rules_named else None):>6}  {_ratio(share):>16}"
        )
    if any(language.language is not None for language in report.languages):
        _print_languages(report.languages)
    left_out = f", {ambiguous} ambiguous left out" if ambiguous else ""
    click.echo(
        f"overall: {len(items)} articles ({flagged} flag, "
        f"{len(items) - flagged - ambiguous} ignore{left_out}): "
        f"precision {_ratio(overall.precision)}, "
        f"recall {_ratio(overall.recall)} ({overall.true_positives} flagged correctly, "
        f"{overall.false_positives} wrongly, {overall.false_negatives} missed)"
    )
    for wrong in report.misclassified:
        who = "no rule" if wrong.rule_id == "*" else wrong.rule_id
        terms = f" (terms: {', '.join(wrong.matched_terms)})" if wrong.matched_terms else ""
        click.echo(f"{wrong.kind}: {who}: {wrong.title}{terms}")
    for item in report.ambiguous:
        rules = ", ".join(item.rule_ids) if item.rule_ids else "no rule"
        click.echo(f"ambiguous (not scored): {rules}: {item.title}")


def _print_languages(languages: Sequence[LanguageScore]) -> None:
    # right, wrong, missed: flagged correctly, flagged wrongly, not flagged (as "overall")
    click.echo(
        "language  articles  flag  ignore  ambiguous  precision  recall  right  wrong  missed"
    )
    for language in languages:
        score = language.score
        total = language.flagged + language.ignored + language.ambiguous
        click.echo(
            f"{language.language or '(none)':<8}  {total:>8}  {language.flagged:>4}  "
            f"{language.ignored:>6}  {language.ambiguous:>9}  {_ratio(score.precision):>9}  "
            f"{_ratio(score.recall):>6}  {score.true_positives:>5}  "
            f"{score.false_positives:>5}  {score.false_negatives:>6}"
        )
