"""The field and severity lists are declared once (issue #12): what repeats them must follow.

``FieldName`` (monitor/matching/condition.py) and ``Severity`` (monitor/model.py) are the
declarations; the JSON Schema for editors and the renderer's emoji are built from them or
keyed by them.
"""

from __future__ import annotations

from typing import Any

from monitor.matching import FIELDS
from monitor.matching.schema import rule_json_schema
from monitor.model import SEVERITIES
from monitor.notify.render import SEVERITY_EMOJI


def _rule_properties() -> dict[str, Any]:
    properties: dict[str, Any] = rule_json_schema()["$defs"]["RuleSpec"]["properties"]
    return properties


def test_the_schema_offers_the_fields_the_condition_language_knows() -> None:
    assert _rule_properties()["fields"]["items"]["enum"] == list(FIELDS)


def test_the_schema_offers_the_severities_of_the_model_least_severe_first() -> None:
    assert _rule_properties()["severity"]["enum"] == list(SEVERITIES)


def test_every_severity_has_its_own_emoji_and_no_other_key_is_there() -> None:
    assert sorted(SEVERITY_EMOJI) == sorted(SEVERITIES)
    assert len(set(SEVERITY_EMOJI.values())) == len(SEVERITIES)
