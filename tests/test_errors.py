"""Every error of the tree survives pickling: parse workers send them back to the main process.

A subclass whose ``__init__`` takes more than a message used to fail to unpickle
(``FeedError.__init__() missing 1 required positional argument: 'message'``), which
broke the parse pool for every feed in flight (issue #8, item 1).
"""

from __future__ import annotations

import importlib
import pickle
import pkgutil
import re

import pytest

import monitor
import monitor.errors
from monitor.errors import (
    ConfigError,
    DeliveryError,
    FeedError,
    FeedParseError,
    FetchError,
    InputError,
    MonitorError,
    RetryLaterError,
    RuleError,
    RuleProblem,
    StoreError,
    UncertainDeliveryError,
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
    RetryLaterError("#news", "HTTP 429", retry_after=30.0),
    UncertainDeliveryError("#news", "no answer after the message was sent (timed out)"),
    InputError("articles.jsonl:3: not JSON"),
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


def _import_every_module() -> None:
    """Import all of monitor/ but the scripts that run on import (``__main__``, Alembic's), so
    that every subclass of MonitorError, wherever it is defined, is in ``__subclasses__``."""
    for module in pkgutil.walk_packages(monitor.__path__, "monitor."):
        if not module.name.endswith(".__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)


def test_every_error_class_is_defined_in_monitor_errors() -> None:
    # One tree in one module (issue #12): InputError and RetryLaterError used to live beside
    # the code that raised them, outside the hierarchy drawn in monitor/errors.py.
    _import_every_module()
    outside = {cls.__qualname__: cls.__module__ for cls in _subclasses(MonitorError)}
    assert {name: module for name, module in outside.items() if module != "monitor.errors"} == {}


def _drawn_tree() -> set[tuple[str, str]]:
    """(class, parent) pairs of the drawing in monitor/errors.py's docstring."""
    doc = monitor.errors.__doc__ or ""
    drawing = doc.split("\n\n")[1]  # after the summary line, before the prose
    lines = drawing.splitlines()
    root_column = lines[0].index("MonitorError")
    pairs: set[tuple[str, str]] = set()
    parents: list[str] = []
    for line in lines:
        found = re.search(r"\w+Error", line)
        assert found is not None, line
        depth = (found.start() - root_column) // 4  # each level is drawn 4 columns in
        del parents[depth:]
        if parents:
            pairs.add((found.group(), parents[-1]))
        parents.append(found.group())
    return pairs


def test_the_tree_drawn_in_monitor_errors_is_the_tree() -> None:
    _import_every_module()
    actual = {
        (cls.__name__, cls.__bases__[0].__name__)
        for cls in _subclasses(MonitorError)
        if cls is not MonitorError
    }
    assert _drawn_tree() == actual
