"""The rules the service is running, reloaded when their files change.

A broken edit never replaces working rules: the engine keeps the last good
version of each broken rule, and of a file that cannot be read at all
(``load_rules(previous=...)``), while the file's other rules reload; this module
reports the problems (log, the `monitor_rule_reload_failures_total` metric, optional ops
message) until a fix lands.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.matching import RuleLoad, RuleSet, compile_rules, load_rules
from monitor.matching.load import rule_files

if TYPE_CHECKING:
    from monitor.metrics import Metrics

log = logging.getLogger(__name__)


def snapshot(path: Path) -> dict[str, str]:
    """Digest of each rule and list file under ``path`` (or of one file), for reloads."""
    digests: dict[str, str] = {}
    for file in rule_files(path) if path.exists() else []:
        try:
            digests[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
        except OSError:
            digests[str(file)] = "unreadable"
    return digests


def describe_changes(old: RuleSet, new: RuleSet) -> list[tuple[str, str]]:
    """(rule id, human line) for each rule a reload added, removed or changed."""
    before = {rule.id: rule for rule in old.rules}
    after = {rule.id: rule for rule in new.rules}
    lines = [(rule_id, f"added rule {rule_id}") for rule_id in after.keys() - before.keys()]
    lines += [(rule_id, f"removed rule {rule_id}") for rule_id in before.keys() - after.keys()]
    lines += [
        (rule_id, f"changed rule {rule_id}")
        for rule_id in before.keys() & after.keys()
        if before[rule_id] != after[rule_id]
    ]
    return sorted(lines, key=lambda change: change[1])


def _load(path: Path | None, previous: RuleLoad | None = None) -> RuleLoad:
    """The rules at ``path``; none at all when MONITOR_RULES is empty on purpose."""
    if path is None:
        return RuleLoad(compile_rules(()), (), {})
    return load_rules(path, previous=previous)


class LiveRules:
    """Thread-safe holder of the current RuleLoad; ``refresh`` is the reload job."""

    def __init__(
        self,
        path: Path | None,
        on_problems: Callable[[str], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.path = path
        self._on_problems = on_problems
        self._metrics = metrics
        self._lock = threading.Lock()
        self._files = snapshot(path) if path is not None else {}
        self._load = _load(path)
        self._report(self._load, initial=True)
        if path is None:
            log.info("no rules (MONITOR_RULES is empty): articles are stored, nothing matches")

    @property
    def current(self) -> RuleLoad:
        with self._lock:
            return self._load

    @property
    def ruleset(self) -> RuleSet:
        return self.current.ruleset

    def refresh(self) -> bool:
        """Reload when any rule or list file changed; return True when something was reloaded."""
        files = snapshot(self.path) if self.path is not None else {}
        if files == self._files:
            return False
        previous = self.current
        loaded = _load(self.path, previous)
        with self._lock:
            self._files = files
            self._load = loaded
        for rule_id, line in describe_changes(previous.ruleset, loaded.ruleset):
            log.info("rules reloaded: %s", line, extra={"rule_id": rule_id})
        self._report(loaded, initial=False)
        return True

    def _report(self, loaded: RuleLoad, *, initial: bool) -> None:
        errors = [problem for problem in loaded.problems if problem.severity == "error"]
        if self._metrics is not None:
            self._metrics.record_rules(loaded, reload_failed=bool(errors) and not initial)
        for problem in loaded.problems:
            (log.error if problem.severity == "error" else log.warning)("%s", problem)
        if not errors:
            if not initial:
                log.info("rules reloaded: %d rules active", len(loaded.ruleset.rules))
            return
        kept = (
            "the rules they break are left out"
            if initial
            else "the last good version of each broken rule stays active"
        )
        headline = (
            f"{len(errors)} rule error(s) in {self.path}; {kept} "
            f"({len(loaded.ruleset.rules)} rules running)"
        )
        log.error("%s", headline)
        summary = headline + ":\n" + "\n".join(str(problem) for problem in errors[:20])
        if self._on_problems is not None:
            self._on_problems(summary)
