"""The rule engine: load and validate rule files, compile them, match articles, explain why.

Pure: no network, no database, no environment. The CLI and the service call `load_rules`
once (and again on reload, passing the previous load) and `match_article` per article.

The loader's side (`load_rules`, `RuleLoad`, `rule_json_schema`: ruamel.yaml, pydantic, lark)
is imported on first use, so parse workers, which only match, stay small.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from monitor.matching.compile import RuleSet, compile_rules
from monitor.matching.condition import FIELDS
from monitor.matching.evaluation import (
    EvalReport,
    LabelledArticle,
    LanguageScore,
    Misclassified,
    RuleScore,
    Unscored,
    check_examples,
    evaluate,
    example_article,
)
from monitor.matching.match import match_article
from monitor.matching.rule import Example, Rule, Sources, Term

if TYPE_CHECKING:
    from monitor.matching.load import RuleLoad, load_rules
    from monitor.matching.schema import rule_json_schema

_LAZY = {
    "RuleLoad": "monitor.matching.load",
    "load_rules": "monitor.matching.load",
    "rule_json_schema": "monitor.matching.schema",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "FIELDS",
    "EvalReport",
    "Example",
    "LabelledArticle",
    "LanguageScore",
    "Misclassified",
    "Rule",
    "RuleLoad",
    "RuleScore",
    "RuleSet",
    "Sources",
    "Term",
    "Unscored",
    "check_examples",
    "compile_rules",
    "evaluate",
    "example_article",
    "load_rules",
    "match_article",
    "rule_json_schema",
]
