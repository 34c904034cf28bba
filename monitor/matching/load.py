"""Load rule files: read YAML safely, validate the shape (pydantic), link lists, rules and
conditions across files, report every problem at once with file:line:col, compile what is good.

A bad rule leaves out that rule only, and a bad list the rules that use it; the rest of the
file loads. With `previous`, a rule that breaks keeps its last good version, and a file that
cannot be read at all keeps its last good version. Problems caused by another problem (a rule
using a broken list) are folded into one line per cause and listed after the causes.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import re2
from pydantic import BaseModel, TypeAdapter, ValidationError

from monitor.errors import RuleProblem
from monitor.matching.compile import RuleSet, compile_rules, phrase_core, regex_options
from monitor.matching.condition import (
    And,
    Condition,
    ConditionSyntaxError,
    Not,
    Or,
    Terms,
    holds_without_terms,
    leaves,
    parse_condition,
    satisfiable,
)
from monitor.matching.rule import Delivery, Example, Rule, Sources, Term
from monitor.matching.schema import (
    ConditionMapping,
    DeliverySpec,
    ExampleArticle,
    Examples,
    RuleFile,
    RuleSpec,
    SourceFilters,
    TermForm,
    TermList,
)
from monitor.matching.yamlsource import PathKey, Position, SourceMap, YamlProblem, read_yaml

MAX_FILE_BYTES = 1024 * 1024
RULE_SUFFIXES = (".yaml", ".yml")
LISTS_FOLDER = "lists"
LOOK_UP = 3  # folders searched for lists/ when one file is checked: its own and two parents
_TERM_LIST: TypeAdapter[TermList] = TypeAdapter(TermList)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f]")  # tab and newline may be meant


@dataclass(frozen=True, slots=True)
class Unit:
    """One rule file that read: its valid lists and rules, and what was wrong with the rest."""

    file: str
    lists: Mapping[str, TermList]
    rules: tuple[tuple[int, RuleSpec], ...]  # (index in the file, rule) of the valid rules
    broken_lists: Mapping[str, RuleProblem]  # name -> first problem in its definition
    broken_rules: frozenset[str]  # ids (where readable) of the rules that did not validate
    problems: tuple[RuleProblem, ...]
    source: SourceMap
    text: str


@dataclass(frozen=True)
class RuleLoad:
    """The outcome of loading a rules folder: compiled rules, every problem, file hashes."""

    ruleset: RuleSet
    problems: tuple[RuleProblem, ...]
    files: Mapping[str, str]  # path -> sha256 of its bytes
    last_good: Mapping[str, Unit] = field(default_factory=dict, repr=False, compare=False)
    last_rules: Mapping[tuple[str, str], Rule] = field(
        default_factory=dict, repr=False, compare=False
    )  # (file, rule id) -> the rule as last loaded without errors

    @property
    def ok(self) -> bool:
        """True when no problem is an error (warnings allowed)."""
        return not any(problem.severity == "error" for problem in self.problems)

    @property
    def errors(self) -> tuple[RuleProblem, ...]:
        return tuple(problem for problem in self.problems if problem.severity == "error")


def rule_files(path: Path) -> list[Path]:
    """The rule files under a folder (recursively), or the one file named."""
    if path.is_dir():
        return sorted(
            item for item in path.rglob("*") if item.suffix in RULE_SUFFIXES and item.is_file()
        )
    return [path]


def lists_root(file: Path) -> Path:
    """The folder whose lists a single rule file is checked with.

    The nearest of the file's folder and its two parents that has a `lists/` subfolder (the
    shipped layout: rules/lists/); without one, the file's own folder.
    """
    for folder in file.resolve().parents[:LOOK_UP]:
        if (folder / LISTS_FOLDER).is_dir():
            return folder if file.is_absolute() else Path(os.path.relpath(folder))
    return file.parent


def load_rules(path: Path, *, previous: RuleLoad | None = None) -> RuleLoad:
    """Load, validate and compile the rule files at `path` (a folder or one file).

    One file is checked with the lists of the folder it belongs to (see `lists_root`): their
    rules and problems are left out, their lists are used.
    """
    problems: list[RuleProblem] = []
    hashes: dict[str, str] = {}
    units: dict[str, Unit] = {}
    unreadable: set[str] = set()
    last_good = dict(previous.last_good) if previous else {}
    root = path
    if not path.exists():
        problems.append(
            RuleProblem(
                str(path),
                1,
                1,
                "no such file or folder",
                hint="set MONITOR_RULES to the rules folder",
            )
        )
    elif not path.is_dir():
        root = lists_root(path)
        for file in rule_files(root):
            if file.resolve() != path.resolve():
                unit, _ = _read_unit(file, {}, last_good.get(str(file)))
                if unit is not None:
                    units[str(file)] = replace(unit, rules=(), broken_rules=frozenset())
    for file in rule_files(path) if path.exists() else []:
        name = str(file)
        unit, file_problems = _read_unit(file, hashes, last_good.get(name))
        problems.extend(file_problems)
        if unit is not None:
            units[name] = unit
        elif name in last_good:
            units[name] = last_good[name]
        else:
            unreadable.add(name)
    linked = _Linker(units, unreadable, root=root, warn_unused=path.is_dir()).link()
    problems.extend(
        problem
        for problem in [*linked.problems, *linked.causes]
        if problem.file in hashes or problem in linked.causes
    )
    rules = list(linked.rules)
    loaded = {rule.id for rule in rules}
    for (name, rule_id), rule in (previous.last_rules if previous else {}).items():
        if rule_id not in loaded and (name in unreadable or rule_id in linked.failed_rules(name)):
            rules.append(rule)
            loaded.add(rule_id)
    good = {name: unit for name, unit in units.items() if name not in linked.failed}
    kept = {name: unit for name, unit in last_good.items() if name in units and name not in good}
    return RuleLoad(
        ruleset=compile_rules(sorted(rules, key=lambda rule: (rule.file, rule.line))),
        problems=tuple(sorted(set(problems), key=_problem_order)),
        files=hashes,
        last_good={**kept, **good},
        last_rules={(rule.file, rule.id): rule for rule in rules},
    )


def _problem_order(problem: RuleProblem) -> tuple[bool, str, int, int, str]:
    """Causes first, then what they caused; each group by file and position."""
    return (problem.follow_on, problem.file, problem.line, problem.column, problem.message)


# --- reading and validating one file ---


def _read_unit(
    file: Path, hashes: dict[str, str], known: Unit | None = None
) -> tuple[Unit | None, list[RuleProblem]]:
    """Read and validate one file; `known` is its last good version, reused if unchanged.

    None when nothing of the file can be used (unreadable, not YAML, not a mapping).
    """
    name = str(file)
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [
                RuleProblem(
                    name,
                    1,
                    1,
                    f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit",
                    hint="split it into several files",
                )
            ]
        raw = file.read_bytes()
    except OSError as exc:
        return None, [RuleProblem(name, 1, 1, f"cannot read file: {exc.strerror}")]
    hashes[name] = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [
            RuleProblem(
                name, 1, 1, f"not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
            )
        ]
    if known is not None and known.text == text:
        # Parsing YAML with positions is most of a reload's cost: a hot reload after one
        # edit re-reads only the files that changed.
        return known, []
    try:
        data, source = read_yaml(text)
    except YamlProblem as exc:
        where = exc.position
        return None, [RuleProblem(name, where.line, where.column, exc.message, hint=exc.hint)]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None, [
            RuleProblem(name, 1, 1, "a rule file is a mapping with 'lists:' and/or 'rules:'")
        ]
    unit = _validate(name, data, source, text)
    return unit, list(unit.problems)


def _validate(file: str, data: dict[str, Any], source: SourceMap, text: str) -> Unit:
    """Validate each list and each rule on its own, so one bad part leaves out only itself."""
    found: list[tuple[PathKey, RuleProblem]] = [
        # A duplicate top-level key spoils nothing below it: the first value is kept.
        (
            path if len(path) > 1 else (),
            RuleProblem(
                file, item.position.line, item.position.column, item.message, hint=item.hint
            ),
        )
        for path, item in source.problems
    ]
    try:
        RuleFile.model_validate(data)
    except ValidationError as exc:
        found += [
            (tuple(error["loc"]), _validation_problem(file, source, data, error))
            for error in exc.errors()
        ]
    broken: dict[PathKey, RuleProblem] = {}
    for path, problem in sorted(found, key=lambda item: _problem_order(item[1])):
        part = path[:2] if len(path) >= 2 and path[0] in {"lists", "rules"} else path[:1]
        broken.setdefault(part, problem)
    raw_lists: dict[str, Any] = data["lists"] if isinstance(data.get("lists"), dict) else {}
    raw_rules: list[Any] = data["rules"] if isinstance(data.get("rules"), list) else []
    ids = (item.get("id") if isinstance(item, dict) else None for item in raw_rules)
    return Unit(
        file=file,
        lists={
            name: _TERM_LIST.validate_python(terms)
            for name, terms in raw_lists.items()
            if ("lists", name) not in broken and ("lists",) not in broken
        },
        rules=tuple(
            (index, RuleSpec.model_validate(item))
            for index, item in enumerate(raw_rules)
            if ("rules", index) not in broken and ("rules",) not in broken
        ),
        broken_lists={
            str(part[1]): problem
            for part, problem in broken.items()
            if len(part) == 2 and part[0] == "lists"
        },
        broken_rules=frozenset(
            rule_id
            for index, rule_id in enumerate(ids)
            if isinstance(rule_id, str) and (("rules", index) in broken or ("rules",) in broken)
        ),
        problems=tuple(problem for _, problem in found),
        source=source,
        text=text,
    )


def _walk(data: Any, loc: tuple[int | str, ...]) -> tuple[PathKey, bool, Any]:
    """Follow a pydantic error location through the data; return (path, at a dict key, value)."""
    path: list[str | int] = []
    current = data
    for part in loc:
        in_dict = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and part < len(current)
        if in_dict or in_list:
            path.append(part)
            current = current[part]
        elif part == "[key]":
            return tuple(path), True, path[-1] if path else None
    return tuple(path), False, current


def _label(path: PathKey) -> str:
    if path and isinstance(path[-1], str):
        return path[-1]
    is_term = (len(path) == 3 and path[0] == "lists") or (len(path) == 5 and path[2] == "terms")
    if is_term:
        return "term"
    if len(path) >= 3 and path[-2] in {"match", "no_match"}:
        return "example"
    if len(path) == 2 and path[0] == "rules":
        return "rule"
    return f"each item of {_label(path[:-1])}" if path else "file"


def _shown(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _choices(expected: str) -> str:
    return ", ".join(re.findall(r"'([^']*)'", expected))


def _validation_problem(file: str, source: SourceMap, data: Any, error: Any) -> RuleProblem:
    loc = tuple(error["loc"])
    kind = error["type"]
    value = error.get("input")
    path, at_key, _ = _walk(data, loc)
    where = source.at(path)
    label = _label(path)
    hint = None
    if value is None and path in source.keys:
        where = source.keys[path]  # an empty value has no position of its own
    if kind == "extra_forbidden":
        key = str(loc[-1])
        where = source.key(path)
        allowed = list(_model_at(path[:-1]).model_fields)
        close = difflib.get_close_matches(key, allowed, n=1)
        message = f"unknown key '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
        if not close:
            hint = "known keys: " + ", ".join(sorted(allowed))
            if _label(path[:-1]) in {"term", "example"}:
                hint = "quote this value: ': ' inside it makes a mapping"
    elif kind == "missing":
        message = f"missing required key '{loc[-1]}'"
    elif at_key:
        where = source.key(path)
        message = (
            f"list name '{path[-1]}' must be lower-case letters, digits and '_', "
            "starting with a letter"
        )
    elif kind == "literal_error":
        message = f"{label} must be one of {_choices(error['ctx']['expected'])} (got {value!r})"
    elif kind == "string_pattern_mismatch" and "channel" in path:
        message = f"{label} {value!r} must be one Slack channel: no spaces or commas"
        if path[-1] == "channel":
            hint = "for several channels write channels: ['#a', '#b']"
    elif kind == "string_pattern_mismatch" and "channels" in path:
        message = f"{label} {value!r} must be one Slack channel: no spaces or commas"
    elif kind == "string_pattern_mismatch":
        message = (
            f"{label} {value!r} must be lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    elif kind == "string_type":
        message = f"{label} must be a string (got {_shown(value)})"
        hint = "quote this value"
        if value is None:
            hint = "quote this value: an empty value or text after ' #' reads as nothing"
        elif isinstance(value, dict):
            hint = "quote this value: ': ' inside it makes a mapping"
    elif kind == "list_type":
        message = f"{label} must be a list (got {_shown(value)})"
        hint = "write [a, b] or one '- item' per line"
    elif kind in {"dict_type", "model_type", "model_attributes_type"}:
        message = f"{label} must be a mapping (got {_shown(value)})"
    elif kind == "string_too_short":
        message = f"{label} must not be empty"
    elif kind == "too_short":
        message = f"{label} must list at least one item"
    elif kind == "value_error":
        text = str(error["msg"]).removeprefix("Value error, ")
        message = text if text.startswith("a term") else f"{label} {text}"
        if value is None:
            hint = "quote this value: an empty value or text after ' #' reads as nothing"
    else:
        message = f"{label}: {error['msg']}"
    return RuleProblem(file, where.line, where.column, message, hint=hint)


def _model_at(path: PathKey) -> type[BaseModel]:
    """The model that validates the mapping at `path`."""
    if _label(path) == "term":
        return TermForm
    if len(path) == 5 and path[2] == "examples":
        return ExampleArticle
    if len(path) == 3 and path[0] == "rules":
        nested: dict[str | int, type[BaseModel]] = {
            "sources": SourceFilters,
            "examples": Examples,
            "condition": ConditionMapping,
            "delivery": DeliverySpec,
        }
        return nested.get(path[2], RuleSpec)
    return RuleSpec if len(path) == 2 else RuleFile


# --- linking lists, rules and conditions across files ---


@dataclass(slots=True)
class _Linked:
    rules: list[Rule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    failed: set[str] = field(default_factory=set)  # files with an error
    failed_ids: set[tuple[str, str]] = field(default_factory=set)  # (file, id) left out
    causes: set[RuleProblem] = field(default_factory=set)  # problems of lists that rules use

    def failed_rules(self, file: str) -> set[str]:
        return {rule_id for name, rule_id in self.failed_ids if name == file}


@dataclass(frozen=True, slots=True)
class _SharedList:
    terms: tuple[Term, ...]
    file: str
    position: Position


@dataclass(slots=True)
class _Folded:
    """Uses of one list that fail for the same reason: reported once, at the first use."""

    first: RuleProblem
    rules: set[str]


class _Linker:
    def __init__(
        self, units: Mapping[str, Unit], unreadable: set[str], *, root: Path, warn_unused: bool
    ) -> None:
        self.units = dict(sorted(units.items()))
        self.unreadable = sorted(unreadable)
        self.root = root
        self.warn_unused = warn_unused
        self.out = _Linked()
        self.shared: dict[str, _SharedList] = {}
        self.broken_lists: dict[str, RuleProblem] = {}
        self.broken_local: set[str] = set()
        self.folded: dict[tuple[str, str], _Folded] = {}
        self.ids: dict[str, str] = {}
        self.used: set[str] = set()
        self.errors = 0
        self.rule_id = ""  # the rule being linked, for messages about its uses of lists
        for unit in self.units.values():
            if unit.problems:
                self.out.failed.add(unit.file)
            for name, problem in unit.broken_lists.items():
                self.broken_lists.setdefault(name, problem)

    def problem(
        self,
        unit: Unit,
        where: Position,
        message: str,
        hint: str | None = None,
        *,
        warning: bool = False,
    ) -> None:
        severity = "warning" if warning else "error"
        self.out.problems.append(
            RuleProblem(unit.file, where.line, where.column, message, severity, hint)
        )
        if not warning:
            self.errors += 1
            self.out.failed.add(unit.file)

    def fold(self, unit: Unit, key: tuple[str, str], problem: RuleProblem) -> None:
        """Count one more rule failing on `key`; the first one's problem stands for all."""
        self.errors += 1
        self.out.failed.add(unit.file)
        folded = self.folded.setdefault(key, _Folded(problem, set()))
        folded.rules.add(f"{unit.file}:{self.rule_id}")

    def link(self) -> _Linked:
        for unit in self.units.values():
            self._lists(unit)
        for unit in self.units.values():
            for index, spec in unit.rules:
                self.rule_id = spec.id
                rule = self._rule(unit, index, spec)
                if rule is not None:
                    self.out.rules.append(rule)
                else:
                    self.out.failed_ids.add((unit.file, spec.id))
            self.out.failed_ids.update((unit.file, rule_id) for rule_id in unit.broken_rules)
        for (_, name), folded in self.folded.items():
            more = len(folded.rules) - 1
            message = folded.first.message
            if more:
                rules = "rule that uses" if more == 1 else "rules that use"
                message += f" (and {more} more {rules} list '{name}')"
            self.out.problems.append(replace(folded.first, message=message))
        if self.warn_unused and not self.out.failed and not self.unreadable:
            for name, shared in self.shared.items():
                if name not in self.used:
                    self.problem(
                        self.units[shared.file],
                        shared.position,
                        f"list '{name}' is not used by any rule",
                        warning=True,
                    )
        return self.out

    def _lists(self, unit: Unit) -> None:
        for name, specs in unit.lists.items():
            where = unit.source.key(("lists", name))
            if name in self.shared:
                first = self.shared[name]
                self.problem(
                    unit,
                    where,
                    f"list '{name}' is already defined at {first.file}:{first.position.line}",
                    "list names are shared by every rule file; rename one",
                )
                continue
            before = len(self.out.problems)
            terms = self._terms(unit, ("lists", name), specs, name)
            if len(self.out.problems) > before:
                self.broken_lists.setdefault(name, self.out.problems[before])
            else:
                self.shared[name] = _SharedList(terms, unit.file, where)

    def _terms(
        self, unit: Unit, path: PathKey, specs: list[str | TermForm], list_name: str | None
    ) -> tuple[Term, ...]:
        terms: dict[Term, None] = {}
        for index, spec in enumerate(specs):
            where = unit.source.at((*path, index))
            if isinstance(spec, str):
                term = Term(spec, list_name=list_name)
            elif spec.regex is not None:
                term = Term(spec.regex, "regex", spec.case_sensitive, spec.exact, list_name)
                scalar = unit.source.scalars.get((*path, index, "regex"))
                if scalar is not None and scalar.style == '"' and _CONTROL.search(spec.regex):
                    # "\bban\b" is valid YAML: \b is a backspace, not a word boundary.
                    self.problem(
                        unit,
                        scalar.position,
                        f"regex {spec.regex!r} holds a control character: in double quotes "
                        "YAML reads \\b as a backspace",
                        "write regexes in single quotes",
                    )
                    continue
            else:
                term = Term(str(spec.phrase), "phrase", spec.case_sensitive, spec.exact, list_name)
            if self._term_ok(unit, where, term):
                terms[term] = None
        return tuple(terms)

    def _term_ok(self, unit: Unit, where: Position, term: Term) -> bool:
        if term.kind == "regex":
            try:
                re2.compile(term.text, regex_options(term.case_sensitive))
            except re2.error as exc:
                detail = (
                    exc.args[0].decode()
                    if exc.args and isinstance(exc.args[0], bytes)
                    else str(exc)
                )
                self.problem(
                    unit,
                    where,
                    f"regex '{term.text}' is not valid RE2: {_construct(term.text, detail)}",
                    "RE2 runs in linear time and has no lookaround or backreferences",
                )
                return False
            return True
        if "*" in term.text[:-1]:
            self.problem(
                unit,
                where,
                f"term '{term.text}': '*' is only allowed at the end",
                "a prefix wildcard such as regulat* matches regulate, regulation, ...",
            )
            return False
        if not phrase_core(term.text)[0]:
            self.problem(
                unit,
                where,
                f"term '{term.text}' has no letters or digits",
                "phrases match words; use a regex: term for symbols",
            )
            return False
        return True

    def _rule(self, unit: Unit, index: int, spec: RuleSpec) -> Rule | None:
        path: PathKey = ("rules", index)
        errors = self.errors
        self.broken_local = set()
        local: dict[str, tuple[Term, ...]] = {}
        for name, specs in spec.terms.items():
            where = unit.source.key((*path, "terms", name))
            if name in self.shared:
                first = self.shared[name]
                self.problem(
                    unit,
                    where,
                    f"local list '{name}' shadows the shared list "
                    f"defined at {first.file}:{first.position.line}",
                    "rename the local list",
                )
                continue
            before = self.errors
            local[name] = self._terms(unit, (*path, "terms", name), specs, name)
            if self.errors > before:
                self.broken_local.add(name)
        condition = self._condition(unit, path, spec, local)
        if condition is None or self.errors > errors:
            return None
        lists = {}
        for leaf in leaves(condition):
            if leaf.name is not None:
                lists[leaf.name] = (
                    local[leaf.name] if leaf.name in local else self.shared[leaf.name].terms
                )
        return Rule(
            id=spec.id,
            title=spec.title,
            condition=condition,
            lists=lists,
            file=unit.file,
            line=unit.source.at(path).line,
            description=spec.description,
            severity=spec.severity,
            channels=tuple(dict.fromkeys([spec.channel] if spec.channel else spec.channels or ())),
            tags=tuple(spec.tags),
            owner=spec.owner,
            enabled=spec.enabled,
            references=tuple(spec.references),
            fields=tuple(dict.fromkeys(spec.fields)),
            sources=Sources(
                *(
                    tuple(getattr(spec.sources, name))
                    for name in ("allow_domains", "deny_domains", "allow_tags", "deny_tags")
                )
            ),
            languages=tuple(language.lower() for language in spec.languages),
            examples=tuple(_examples(unit, path, spec)),
            delivery=_delivery(spec),
        )

    def _condition(
        self, unit: Unit, path: PathKey, spec: RuleSpec, local: dict[str, tuple[Term, ...]]
    ) -> Condition | None:
        self._check_id(unit, path, spec.id)
        where = unit.source.at((*path, "condition"))
        if spec.condition is None:
            if not spec.terms:
                self.problem(
                    unit,
                    unit.source.at(path),
                    f"rule '{spec.id}' has no condition and no terms",
                    "add terms: (any term matches) or a condition:",
                )
                return None
            parts = tuple(Terms(name) for name in spec.terms)
            return parts[0] if len(parts) == 1 else Or(parts)
        if isinstance(spec.condition, str):
            condition = self._parse(unit, (*path, "condition"), spec.condition, local)
        else:
            parsed: dict[str, list[Condition]] = {"all": [], "any": [], "none": []}
            for mode, items in (
                ("all", spec.condition.all),
                ("any", spec.condition.any),
                ("none", spec.condition.none),
            ):
                for number, item in enumerate(items):
                    node = self._parse(unit, (*path, "condition", mode, number), item, local)
                    if node is not None:
                        parsed[mode].append(node)
            if not any(parsed.values()):
                if not spec.condition.all + spec.condition.any + spec.condition.none:
                    self.problem(
                        unit,
                        where,
                        "condition mapping lists no names",
                        "give all:, any: or none: a list of list names",
                    )
                return None
            parts_: list[Condition] = list(parsed["all"])
            if parsed["any"]:
                parts_.append(Or(tuple(parsed["any"])))
            if parsed["none"]:
                parts_.append(Not(Or(tuple(parsed["none"]))))
            condition = parts_[0] if len(parts_) == 1 else And(tuple(parts_))
        if condition is None:
            return None
        if not satisfiable(condition):
            self.problem(
                unit,
                where,
                "condition can never match: it needs a term both present and absent",
                "check the 'not' parts",
            )
            return None
        if holds_without_terms(condition):
            self.problem(
                unit,
                where,
                "condition holds for articles without any of its terms, "
                "so it is checked against every article",
                "combine 'not ...' with a term that must be present",
                warning=True,
            )
        used = {leaf.name for leaf in leaves(condition)}
        for name in local:
            if name not in used:
                self.problem(
                    unit,
                    unit.source.key((*path, "terms", name)),
                    f"local list '{name}' is not used by the condition",
                    warning=True,
                )
        return condition

    def _check_id(self, unit: Unit, path: PathKey, rule_id: str) -> None:
        where = unit.source.at((*path, "id"))
        first = self.ids.get(rule_id)
        if first is not None:
            self.problem(
                unit,
                where,
                f"rule id '{rule_id}' is already used at {first}",
                "rule ids are unique across all rule files",
            )
            return
        self.ids[rule_id] = f"{unit.file}:{where.line}"

    def _parse(
        self, unit: Unit, path: PathKey, text: str, local: dict[str, tuple[Term, ...]]
    ) -> Condition | None:
        try:
            condition = parse_condition(text)
        except ConditionSyntaxError as exc:
            self.problem(
                unit, _offset_position(unit, path, text, exc.offset), exc.message, exc.hint
            )
            return None
        ok = True
        for leaf in leaves(condition):
            if leaf.name is None:
                if not phrase_core(str(leaf.phrase))[0]:
                    self.problem(
                        unit,
                        _offset_position(unit, path, text, leaf.offset),
                        f'phrase "{leaf.phrase}" has no letters or digits',
                    )
                    ok = False
                continue
            if leaf.name in self.broken_local:
                ok = False  # its bad term is reported where the list is
                continue
            where = _offset_position(unit, path, text, leaf.offset)
            found = self._resolve(unit, where, leaf.name, local)
            if found is None:
                self.used.add(leaf.name)
                continue
            ok = False
            problem, fold = found
            if fold:
                self.fold(unit, (str(problem.follow_on), leaf.name), problem)
            else:
                self.problem(unit, where, problem.message, problem.hint)
        return condition if ok else None

    def _resolve(
        self, unit: Unit, where: Position, name: str, local: dict[str, tuple[Term, ...]]
    ) -> tuple[RuleProblem, bool] | None:
        """None when `name` names a usable list; else the problem with this use of it, and
        whether it is folded with the other rules that have the same problem with `name`."""

        def problem(message: str, hint: str | None, *, follow_on: bool = False) -> RuleProblem:
            return RuleProblem(
                unit.file, where.line, where.column, message, hint=hint, follow_on=follow_on
            )

        if name in local:
            terms = local[name]
        elif name in self.shared:
            terms = self.shared[name].terms
        elif name in self.broken_lists:
            cause = self.broken_lists[name]
            self.out.causes.add(cause)
            message = (
                f"rule '{self.rule_id}' is left out: list '{name}' has errors "
                f"(first at {cause.file}:{cause.line}:{cause.column})"
            )
            hint = "fix the list and the rules that use it load again"
            return problem(message, hint, follow_on=True), True
        else:
            known = sorted({*local, *self.shared})
            close = difflib.get_close_matches(name, known, n=1)
            message = f"unknown list '{name}'" + (f" (did you mean '{close[0]}'?)" if close else "")
            if self.unreadable:
                hint = f"it may be defined in {self.unreadable[0]}, which could not be read"
                return problem(message, hint, follow_on=True), True
            nowhere = None if close else f"no file under {self.root} defines it"
            return problem(message, nowhere), True
        if not terms:
            return problem(
                f"list '{name}' is empty, so this can never match", "add terms to the list"
            ), False
        return None


def _offset_position(unit: Unit, path: PathKey, text: str, offset: int) -> Position:
    """Where character `offset` of a string value is in the file (exact for one-line values)."""
    scalar = unit.source.scalars.get(path)
    if scalar is None:
        return unit.source.at(path)
    start = scalar.position
    if scalar.style in {"|", ">"}:
        target = text[offset:].split("\n", 1)[0].strip() or text.strip()
        lines = unit.text.splitlines()
        for number in range(start.line, min(len(lines), start.line + text.count("\n") + 50)):
            found = lines[number].find(target)
            if target and found >= 0:
                return Position(number + 1, found + 1)
        return start
    if "\n" in text[:offset]:
        return start
    quote = 1 if scalar.style in {"'", '"'} else 0
    return Position(start.line, start.column + quote + offset)


def _construct(pattern: str, detail: str) -> str:
    """Name the construct RE2 refused, in words."""
    if "(?=" in pattern or "(?!" in pattern:
        return f"lookahead is not supported ({detail})"
    if "(?<=" in pattern or "(?<!" in pattern:
        return f"lookbehind is not supported ({detail})"
    if re.search(r"\\[1-9]", pattern):
        return f"backreferences are not supported ({detail})"
    return detail


def _delivery(spec: RuleSpec) -> Delivery:
    if isinstance(spec.delivery, str):  # "immediate"
        return Delivery()
    return Delivery(spec.delivery.digest, spec.delivery.timezone, spec.delivery.max_per_hour)


def _examples(unit: Unit, path: PathKey, spec: RuleSpec) -> Iterator[Example]:
    for kind, items in (("match", spec.examples.match), ("no_match", spec.examples.no_match)):
        for number, item in enumerate(items):
            where = unit.source.at((*path, "examples", kind, number))
            if isinstance(item, ExampleArticle):
                yield Example(
                    kind == "match",
                    where.line,
                    where.column,
                    item.title,
                    item.summary,
                    item.content,
                    tuple(item.authors),
                    tuple(item.categories),
                    item.link,
                    item.feed,
                    tuple(item.tags),
                    item.language,
                )
            else:
                yield Example(kind == "match", where.line, where.column, title=item)
