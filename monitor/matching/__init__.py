"""The rule engine: load and validate rule files, compile them, match articles, explain why.

Pure: no network, no database, no environment. The CLI and the service call `load_rules`
once (and again on reload, passing the previous load) and `match_article` per article.
"""

from monitor.matching.compile import RuleSet, compile_rules
from monitor.matching.condition import FIELDS
from monitor.matching.evaluation import (
    EvalReport,
    LabelledArticle,
    Misclassified,
    RuleScore,
    check_examples,
    evaluate,
    example_article,
)
from monitor.matching.load import RuleLoad, load_rules
from monitor.matching.match import match_article
from monitor.matching.rule import Example, Rule, Sources, Term
from monitor.matching.schema import rule_json_schema

__all__ = [
    "FIELDS",
    "EvalReport",
    "Example",
    "LabelledArticle",
    "Misclassified",
    "Rule",
    "RuleLoad",
    "RuleScore",
    "RuleSet",
    "Sources",
    "Term",
    "check_examples",
    "compile_rules",
    "evaluate",
    "example_article",
    "load_rules",
    "match_article",
    "rule_json_schema",
]
