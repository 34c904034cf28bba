"""Every error of the tree survives pickling: parse workers send them back to the main process.

A subclass whose ``__init__`` takes more than a message used to fail to unpickle
(``FeedError.__init__() missing 1 required positional argument: 'message'``), which
broke the parse pool for every feed in flight (issue #8, item 1).
"""

from __future__ import annotations

import pickle

import pytest

import monitor.dryrun
import monitor.notify.base
from monitor.errors import (
    ConfigError,
    DeliveryError,
    FeedError,
    FeedParseError,
    FetchError,
    MonitorError,
    RuleError,
    RuleProblem,
    StoreError,
)

PROBLEM = RuleProblem("rules/a.yaml", 3, 7, "unknown key 'when'", hint="did you mean 'where'?")

SAMPLES: list[MonitorError] = [
    MonitorError("something failed"),
    ConfigError("MONITOR_POLL_INTERVAL", "must be at least 10 (got 5)"),
    FeedError("https://example.org/feed", "broken"),
    FetchError("https://example.org/feed", "HTTP 503 Service Unavailable", 503),
    FeedParseError("https://example.org/feed", "not a feed: the server returned an HTML page"),
    RuleError([PROBLEM, RuleProblem("rules/b.yaml", 1, 1, "empty", severity="warning")]),
    StoreError("database sqlite:///monitor.db is unavailable"),
    DeliveryError("#news", "channel_not_found", permanent=True),
    monitor.notify.base.RetryLaterError("#news", "HTTP 429", retry_after=30.0),
    monitor.dryrun.InputError("articles.jsonl:3: not JSON"),
]


def _subclasses(cls: type[MonitorError]) -> set[type[MonitorError]]:
    found = {cls}
    for subclass in cls.__subclasses__():
        found |= _subclasses(subclass)
    return found


def test_the_samples_cover_every_class_of_the_tree() -> None:
    assert _subclasses(MonitorError) == {type(error) for error in SAMPLES}


@pytest.mark.parametrize("error", SAMPLES, ids=lambda error: type(error).__name__)
def test_an_error_survives_pickling_with_its_message_and_context(error: MonitorError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)
