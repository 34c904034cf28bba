"""Rule quality: the examples written in rule files, and precision/recall on labelled articles.

Both go through match_article, the same code path as production, so the rule test tool and the
service cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor.errors import RuleProblem
from monitor.matching.compile import RuleSet, compile_rules
from monitor.matching.condition import leaves
from monitor.matching.match import match_article, scan_article
from monitor.matching.rule import Example, Rule
from monitor.model import Article

_EXAMPLE_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # examples carry no date; matching ignores it


def example_article(example: Example) -> Article:
    """The article an example stands for."""
    return Article(
        feed_url="example:",
        entry_id=f"example:{example.line}",
        title=example.title,
        published=_EXAMPLE_TIME,
        link=example.link,
        summary=example.summary,
        content=example.content,
        authors=example.authors,
        categories=example.categories,
        language=example.language,
        feed_name=example.feed,
        feed_tags=example.tags,
    )


def check_examples(ruleset: RuleSet) -> tuple[RuleProblem, ...]:
    """One problem per example whose outcome differs from what the rule file says."""
    disabled = [
        dataclasses.replace(rule, enabled=True) for rule in ruleset.rules if not rule.enabled
    ]
    enabled_copy = compile_rules(disabled) if disabled else None
    problems = []
    for rule in ruleset.rules:
        target = ruleset if rule.enabled or enabled_copy is None else enabled_copy
        for example in rule.examples:
            problem = _check(target, rule, example)
            if problem is not None:
                problems.append(problem)
    return tuple(problems)


def _check(ruleset: RuleSet, rule: Rule, example: Example) -> RuleProblem | None:
    article = example_article(example)
    matched = [match for match in match_article(ruleset, article) if match.rule_id == rule.id]
    if example.should_match and not matched:
        found = _found_terms(ruleset, rule, article)
        message = (
            f'example "{example.label}" should match rule {rule.id} but did not '
            f"(terms found: {', '.join(found) if found else 'none'})"
        )
    elif not example.should_match and matched:
        message = (
            f'example "{example.label}" should not match rule {rule.id} but did '
            f"(matched: {', '.join(matched[0].matched_terms) or 'no terms'})"
        )
    else:
        return None
    return RuleProblem(rule.file, example.line, example.column, message)


def _found_terms(ruleset: RuleSet, rule: Rule, article: Article) -> list[str]:
    """The terms of `rule` found in the article, in the order they were found."""
    index = ruleset.index
    own = {term for leaf in leaves(rule.condition) for term in rule.terms_of(leaf)}
    scan = scan_article(ruleset, article)
    return list(
        dict.fromkeys(index.terms[term].text for term in scan.hits if index.terms[term] in own)
    )


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    """An article, whether the desk wants it flagged, and optionally which rules should match.

    Most labelled sets say only "flag" or "ignore" per article (what the desk sees in Slack);
    ``expected`` names the rules that should match when the set is that precise.
    """

    article: Article
    flag: bool
    expected: frozenset[str] | None = None
    ambiguous: bool = False  # the desk could not say: left out of precision and recall


@dataclass(frozen=True, slots=True)
class RuleScore:
    rule_id: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        """Share of the matches that were wanted; None when nothing matched."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        """Share of the wanted matches that were found; None when none were wanted."""
        relevant = self.true_positives + self.false_negatives
        return self.true_positives / relevant if relevant else None


@dataclass(frozen=True, slots=True)
class Misclassified:
    """One wrong outcome: `item` is the index in the labelled items.

    ``rule_id`` is the rule that matched an article it should not have, or that missed one
    it was expected to match; "*" when no rule at all flagged an article labelled flag.
    """

    item: int
    entry_id: str
    title: str
    rule_id: str
    kind: str  # "false positive" or "false negative"
    matched_terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LanguageScore:
    """Per-article figures over the items of one language (None: the item gave none)."""

    language: str | None
    score: RuleScore  # as EvalReport.overall, over this language's flag and ignore items
    flagged: int  # items labelled flag
    ignored: int  # items labelled ignore
    ambiguous: int  # items labelled ambiguous, left out of `score`


@dataclass(frozen=True, slots=True)
class Unscored:
    """An ambiguous item and the rules that matched it (shown, never scored)."""

    item: int
    entry_id: str
    title: str
    rule_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EvalReport:
    rules: tuple[RuleScore, ...]  # one per rule of the ruleset, then unknown expected ids
    overall: RuleScore  # per article: flagged by any rule versus labelled flag; rule_id "*"
    misclassified: tuple[Misclassified, ...]
    flagged_items: int  # articles labelled flag: a rule's share of them is its coverage
    languages: tuple[LanguageScore, ...] = ()  # most items first
    ambiguous: tuple[Unscored, ...] = ()


def evaluate(ruleset: RuleSet, items: Sequence[LabelledArticle]) -> EvalReport:
    """Precision and recall per article and per rule, with the items that were got wrong.

    A rule's match counts as right when the item names it in ``expected``, or, for items
    that name no rules, when the item is labelled flag. A rule misses only items that name
    it: with flag/ignore labels alone, no single rule is expected to catch every story.
    Ambiguous items are matched and listed, never scored. The same per-article figures are
    given per article language.
    """
    counts: dict[str, list[int]] = {rule.id: [0, 0, 0] for rule in ruleset.rules}
    overall = [0, 0, 0]
    # language -> [true pos., false pos., false neg., flag, ignore, ambiguous]
    by_language: dict[str | None, list[int]] = {}
    wrong: list[Misclassified] = []
    unscored: list[Unscored] = []
    for number, item in enumerate(items):
        article = item.article
        matches = {match.rule_id: match for match in match_article(ruleset, article)}
        language = by_language.setdefault(article.language, [0, 0, 0, 0, 0, 0])
        if item.ambiguous:
            language[5] += 1
            unscored.append(Unscored(number, article.entry_id, article.title, tuple(matches)))
            continue
        language[3 if item.flag else 4] += 1
        outcome = 0 if matches and item.flag else 1 if matches else 2 if item.flag else -1
        if outcome >= 0:
            overall[outcome] += 1
            language[outcome] += 1
        if not matches and item.flag and not item.expected:
            wrong.append(
                Misclassified(number, article.entry_id, article.title, "*", "false negative")
            )
        wanted = item.expected if item.expected is not None else frozenset()
        for rule_id in sorted(matches.keys() | wanted):
            tally = counts.setdefault(rule_id, [0, 0, 0])
            matched = rule_id in matches
            right = rule_id in wanted if item.expected is not None else item.flag
            terms = matches[rule_id].matched_terms if matched else ()
            if matched and right:
                tally[0] += 1
                continue
            kind = "false positive" if matched else "false negative"
            tally[1 if matched else 2] += 1
            wrong.append(
                Misclassified(number, article.entry_id, article.title, rule_id, kind, terms)
            )
    scores = tuple(RuleScore(rule_id, *tally) for rule_id, tally in counts.items())
    flagged_items = sum(1 for item in items if item.flag and not item.ambiguous)
    languages = tuple(
        LanguageScore(code, RuleScore(code or "*", *tally[:3]), *tally[3:])
        for code, tally in sorted(
            by_language.items(), key=lambda entry: (-sum(entry[1][3:]), entry[0] or "")
        )
    )
    return EvalReport(
        scores, RuleScore("*", *overall), tuple(wrong), flagged_items, languages, tuple(unscored)
    )
