"""An alert layout the operator writes as a Jinja2 template, run in Jinja2's sandbox.

The template writes the message body in mrkdwn; a line holding only ``---`` starts a new
section. Every value it prints goes through the engine's ``finalize`` hook, which escapes
it for mrkdwn, so the author can neither forget nor double the escaping and feed text
can never ping, link or format (``|e`` and ``|safe`` change nothing). Fragments the
renderer built (``headline``, ``when``, a rule's ``emoji`` and ``why``) are already
escaped and print as they are. The header, the fallback text and the console's plain
form stay the default layout's; the sections are cut to Slack's limits like any other.
A template that does not parse or fails on a sample alert is refused at start.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2 import TemplateSyntaxError as JinjaSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from monitor.errors import ConfigError
from monitor.model import Article, Match, TermHit
from monitor.notify.fit import MAX_BLOCKS, MAX_SECTION, MAX_TOTAL, clip_mrkdwn, total_width
from monitor.notify.render import Mrkdwn, SlackMessage, escape_mrkdwn, render_alert, template_values

log = logging.getLogger(__name__)

SETTING = "MONITOR_SLACK_TEMPLATE"
_SECTION_BREAK = re.compile(r"^[ \t]*---[ \t]*$", re.MULTILINE)
# What a template's own expressions may raise on some alert (a bad index, a division).
_RENDER_ERRORS = (TemplateError, ArithmeticError, LookupError, TypeError, ValueError)

# The alert a template is tried on at start: every value set, hostile text included.
SAMPLE_ARTICLE = Article(
    feed_url="https://feeds.example.com/world.rss",
    entry_id="urn:sample",
    title="Sample <!channel> headline & more",
    published=datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
    link="https://news.example.com/sample?a=1&b=2",
    summary="A sample summary.",
    authors=("Jane Doe",),
    categories=("Policy",),
    language="en",
    feed_name="Example News",
    feed_tags=("sample",),
)
SAMPLE_MATCH = Match(
    "sample-rule", "Sample rule", "high", None, (TermHit("sample", "title", "Sample", 0, 6),)
)


class AlertTemplate:
    """A loaded, checked template; ``render`` lays out one alert with it."""

    def __init__(self, path: Path, template: Template) -> None:
        self.path = path
        self._template = template

    @classmethod
    def load(cls, path: Path) -> AlertTemplate:
        """Parse ``path`` and try it on a sample alert; ConfigError naming file and line if bad."""
        if not path.is_file():
            raise ConfigError(
                SETTING, f"{path}: no such file; give the template's path or unset {SETTING}"
            )
        environment = SandboxedEnvironment(
            loader=FileSystemLoader(path.parent),
            undefined=StrictUndefined,
            finalize=_escape_value,
            autoescape=False,  # HTML escaping; mrkdwn's is done by finalize
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # The engine escapes every value once; an author's |e or |safe must not change that.
        for name in ("e", "escape", "safe", "forceescape"):
            environment.filters[name] = _as_given
        try:
            template = environment.get_template(path.name)
        except JinjaSyntaxError as exc:
            raise ConfigError(SETTING, f"{path}:{exc.lineno}: {exc.message}") from exc
        except (TemplateError, OSError, UnicodeDecodeError) as exc:
            raise ConfigError(SETTING, f"{path}: cannot read the template: {exc}") from exc
        loaded = cls(path, template)
        try:
            body = loaded._body(SAMPLE_ARTICLE, [SAMPLE_MATCH])
        except _RENDER_ERRORS as exc:
            raise ConfigError(SETTING, f"{loaded._where(exc)}: {exc}") from exc
        if not _sections(body):
            raise ConfigError(SETTING, f"{path}: renders nothing for a sample alert")
        return loaded

    def render(self, article: Article, matches: Sequence[Match]) -> SlackMessage:
        """The alert laid out by the template; the default layout if the template fails on it."""
        default = render_alert(article, matches)
        try:
            sections = _sections(self._body(article, matches))
        except _RENDER_ERRORS as exc:
            log.warning("%s: %s; this alert went out in the default layout", self._where(exc), exc)
            return default
        if not sections:
            return default
        blocks: list[Mapping[str, Any]] = [default.blocks[0]]
        used = total_width(default.text, blocks)
        for text in sections[: MAX_BLOCKS - 1]:
            block = {"type": "section", "text": {"type": "mrkdwn", "text": text, "verbatim": True}}
            used += total_width("", [block])
            if used > MAX_TOTAL:
                break
            blocks.append(block)
        return SlackMessage(default.text, tuple(blocks), default.plain)

    def _body(self, article: Article, matches: Sequence[Match]) -> str:
        return self._template.render(template_values(article, matches))

    def _where(self, exc: BaseException) -> str:
        """``file:line`` of the template line that raised ``exc``, from Jinja's traceback."""
        lines = [
            frame.lineno
            for frame in traceback.extract_tb(exc.__traceback__)
            if Path(frame.filename).name == self.path.name and frame.lineno is not None
        ]
        return f"{self.path}:{lines[-1]}" if lines else str(self.path)


def _sections(body: str) -> list[str]:
    parts = (part.strip() for part in _SECTION_BREAK.split(body))
    return [clip_mrkdwn(part, MAX_SECTION) for part in parts if part]


def _escape_value(value: Any) -> str:
    if isinstance(value, Mrkdwn):
        return value
    return "" if value is None else escape_mrkdwn(str(value))


def _as_given(value: Any) -> Any:
    return value
