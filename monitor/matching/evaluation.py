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
    index = ruleset.index
    position = next(i for i, candidate in enumerate(ruleset.rules) if candidate.id == rule.id)
    scan = scan_article(ruleset, article)
    return list(
        dict.fromkeys(
            index.terms[term].text for term in scan.hits if position in index.term_rules[term]
        )
    )


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    """An article and the ids of the rules that should match it (empty: none should)."""

    article: Article
    expected: frozenset[str]


@dataclass(frozen=True, slots=True)
class RuleScore:
    rule_id: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float | None:
        """Share of the rule's matches that were expected; None when it matched nothing."""
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else None

    @property
    def recall(self) -> float | None:
        """Share of the expected matches the rule found; None when none were expected."""
        relevant = self.true_positives + self.false_negatives
        return self.true_positives / relevant if relevant else None


@dataclass(frozen=True, slots=True)
class Misclassified:
    """One wrong outcome: `item` is the index in the labelled items."""

    item: int
    entry_id: str
    title: str
    rule_id: str
    kind: str  # "false positive" or "false negative"
    matched_terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EvalReport:
    rules: tuple[RuleScore, ...]  # one per rule of the ruleset, then unknown labelled ids
    overall: RuleScore  # micro-averaged over every rule; rule_id is "*"
    misclassified: tuple[Misclassified, ...]


def evaluate(ruleset: RuleSet, items: Sequence[LabelledArticle]) -> EvalReport:
    """Precision and recall per rule and overall, with the items each rule got wrong."""
    counts: dict[str, list[int]] = {rule.id: [0, 0, 0] for rule in ruleset.rules}
    wrong: list[Misclassified] = []
    for number, item in enumerate(items):
        matches = {match.rule_id: match for match in match_article(ruleset, item.article)}
        for rule_id in sorted(matches.keys() | item.expected):
            tally = counts.setdefault(rule_id, [0, 0, 0])
            terms = matches[rule_id].matched_terms if rule_id in matches else ()
            if rule_id in matches and rule_id in item.expected:
                tally[0] += 1
                continue
            kind = "false positive" if rule_id in matches else "false negative"
            tally[1 if rule_id in matches else 2] += 1
            wrong.append(
                Misclassified(
                    number, item.article.entry_id, item.article.title, rule_id, kind, terms
                )
            )
    scores = tuple(RuleScore(rule_id, *tally) for rule_id, tally in counts.items())
    overall = RuleScore(
        "*", *(sum(score[column] for score in counts.values()) for column in range(3))
    )
    return EvalReport(scores, overall, tuple(wrong))
