"""The shape of a rule file as pydantic models: the loader validates with them, the JSON Schema
for editors (docs/rule-schema.json) is generated from them.

Regenerate the schema with ``python -m monitor.matching > docs/rule-schema.json``.
Only the shape is checked here; references between lists, rules and files are the loader's.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.digest_schedule import check_crontab, check_timezone
from monitor.matching.condition import FieldName
from monitor.matching.rule import DEFAULT_FIELDS
from monitor.model import Severity

LIST_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
RULE_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


def _yaml_bool(value: Any) -> Any:
    """YAML 1.2 booleans only: `yes`, `on` and friends are strings, not booleans."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(f"must be true or false (got {value!r})")


YamlBool = Annotated[bool, BeforeValidator(_yaml_bool)]
ListName = Annotated[str, StringConstraints(pattern=LIST_NAME_PATTERN)]
Text = Annotated[str, StringConstraints(min_length=1)]
# A Slack channel name or ID: no spaces (a match carries several separated by spaces).
CHANNEL_PATTERN = r"^[^\s,]+$"
Channel = Annotated[str, StringConstraints(pattern=CHANNEL_PATTERN, max_length=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TermForm(_Model):
    """The long form of a term: a phrase or an RE2 regex, with options."""

    phrase: Text | None = Field(None, description="words to find; '*' at the end for a prefix")
    regex: Text | None = Field(None, description="RE2 pattern, searched in the original text")
    case_sensitive: YamlBool = Field(False, description="match the case as written (acronyms)")
    exact: YamlBool = Field(False, description="no plural or possessive inflections")

    @model_validator(mode="after")
    def _one_kind(self) -> TermForm:
        if (self.phrase is None) == (self.regex is None):
            raise ValueError("a term needs exactly one of 'phrase' or 'regex'")
        return self


def _default_fields() -> list[FieldName]:
    return list(DEFAULT_FIELDS)


def _term_kind(value: Any) -> str:
    return "form" if isinstance(value, dict) else "phrase"


TermSpec = Annotated[
    Annotated[Text, Tag("phrase")] | Annotated[TermForm, Tag("form")],
    Discriminator(_term_kind),
]
TermList = list[TermSpec]


class ConditionMapping(_Model):
    """First-version condition: all of `all`, at least one of `any`, none of `none`."""

    all: list[Text] = Field(default_factory=list)
    any: list[Text] = Field(default_factory=list)
    none: list[Text] = Field(default_factory=list)


class SourceFilters(_Model):
    allow_domains: list[Text] = Field(
        default_factory=list, description="link domains (and subdomains)"
    )
    deny_domains: list[Text] = Field(default_factory=list)
    allow_tags: list[Text] = Field(default_factory=list, description="feed tags from feeds.yaml")
    deny_tags: list[Text] = Field(default_factory=list)


class ExampleArticle(_Model):
    """An example article; a plain string in `examples` is a title."""

    title: str = ""
    summary: str = ""
    content: str = ""
    authors: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    link: str | None = None
    feed: str = ""
    tags: list[str] = Field(default_factory=list)
    language: str | None = None


def _example_kind(value: Any) -> str:
    return "article" if isinstance(value, dict) else "title"


ExampleSpec = Annotated[
    Annotated[Text, Tag("title")] | Annotated[ExampleArticle, Tag("article")],
    Discriminator(_example_kind),
]


class Examples(_Model):
    match: list[ExampleSpec] = Field(default_factory=list)
    no_match: list[ExampleSpec] = Field(default_factory=list)


class DeliverySpec(_Model):
    """`delivery:` as a mapping; the string `immediate` is the default."""

    digest: Text | None = Field(
        None,
        description="crontab schedule of a digest instead of immediate alerts, "
        "e.g. '0 9 * * mon-fri'",
    )
    timezone: Text = Field("UTC", description="IANA time zone the schedule is read in")
    max_per_hour: Annotated[int, Field(ge=1)] | None = Field(
        None, description="at most this many immediate alerts an hour; the rest in a summary"
    )

    @field_validator("digest")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            check_crontab(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        check_timezone(value)
        return value

    @model_validator(mode="after")
    def _limit_without_digest(self) -> DeliverySpec:
        if self.digest is not None and self.max_per_hour is not None:
            raise ValueError(
                "has both digest and max_per_hour: a digest rule sends no immediate alerts "
                "to limit; remove one"
            )
        return self


def _delivery_kind(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "word"


DeliveryChoice = Annotated[
    Annotated[Literal["immediate"], Tag("word")] | Annotated[DeliverySpec, Tag("mapping")],
    Discriminator(_delivery_kind),
]


class RuleSpec(_Model):
    """One rule as written in a rule file."""

    id: Annotated[str, StringConstraints(pattern=RULE_ID_PATTERN)]
    title: Text
    description: str = ""
    severity: Severity = "medium"
    channel: Channel | None = Field(
        None,
        description="Slack channel; default: MONITOR_SEVERITY_CHANNELS, then MONITOR_SLACK_CHANNEL",
    )
    channels: Annotated[list[Channel], Field(min_length=1)] | None = Field(
        None, description="Slack channels, instead of `channel`: the alert goes to each"
    )
    tags: list[Text] = Field(default_factory=list)
    owner: Text | None = None
    enabled: YamlBool = True
    references: list[Text] = Field(default_factory=list)
    fields: Annotated[list[FieldName], Field(min_length=1)] = Field(
        default_factory=_default_fields,
        description="fields searched by unscoped terms",
    )
    terms: dict[ListName, TermList] = Field(default_factory=dict)
    condition: Text | ConditionMapping | None = None
    sources: SourceFilters = Field(default_factory=SourceFilters)
    languages: list[Text] = Field(default_factory=list)
    examples: Examples = Field(default_factory=Examples)
    delivery: DeliveryChoice = Field(
        "immediate", description="immediate (default) or a mapping with a digest schedule"
    )

    @field_validator("delivery", mode="before")
    @classmethod
    def _delivery_word(cls, value: Any) -> Any:
        if isinstance(value, str) and value != "immediate":
            raise ValueError(
                f"must be immediate or a mapping such as {{digest: '0 9 * * mon-fri'}} "
                f"(got {value!r})"
            )
        return value

    @field_validator("channels")
    @classmethod
    def _one_way_to_route(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is not None and info.data.get("channel") is not None:
            raise ValueError("cannot be given with `channel`: list every channel in `channels`")
        return value

    @field_validator("channel", "channels", "owner", "condition", "delivery", mode="before")
    @classmethod
    def _written_means_set(cls, value: Any) -> Any:
        # Optional, but never null when written: `channel: #fr` reads as null (a comment).
        if value is None:
            raise ValueError("has no value")
        return value


class RuleFile(_Model):
    """A rule file: shared term lists, rules, or both."""

    lists: dict[ListName, TermList] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)


def rule_json_schema() -> dict[str, Any]:
    """JSON Schema of a rule file, for editors (yaml-language-server) and docs."""
    schema = RuleFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "media-monitor rule file"
    return schema


def schema_text() -> str:
    """The schema as committed in docs/rule-schema.json."""
    return json.dumps(rule_json_schema(), indent=2, sort_keys=True) + "\n"
