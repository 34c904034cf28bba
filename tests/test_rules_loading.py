"""Loading and validation: one test per problem kind, asserting the exact `file:line:col` text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.matching import load_rules, match_article
from monitor.model import Article

ROOT = Path(__file__).resolve().parent.parent

RULE = "rules:\n  - id: r\n    title: R\n"

ERROR_CASES = [
    (
        "unknown key",
        RULE + "    chanel: '#x'\n    terms: {a: [x]}\n",
        ["4:5: unknown key 'chanel' (did you mean 'channel'?)"],
    ),
    (
        "severity",
        RULE + "    severity: urgent\n    terms: {a: [x]}\n",
        ["4:15: severity must be one of info, low, medium, high, critical (got 'urgent')"],
    ),
    (
        "comment swallows a channel",
        RULE + "    channel: #fr\n    terms: {a: [x]}\n",
        [
            "4:5: channel has no value "
            "(quote this value: an empty value or text after ' #' reads as nothing)"
        ],
    ),
    (
        "null term and a colon in a term",
        "lists:\n  a:\n    - ~\n    - stop: selling\n",
        [
            "3:7: term must be a string (got nothing) "
            "(quote this value: an empty value or text after ' #' reads as nothing)",
            "4:7: unknown key 'stop' (quote this value: ': ' inside it makes a mapping)",
        ],
    ),
    (
        "unknown list",
        "lists:\n  vendors: [ibm]\n" + RULE + "    condition: vendorz and vendors\n",
        ["6:16: unknown list 'vendorz' (did you mean 'vendors'?)"],
    ),
    (
        "contradiction",
        "lists:\n  a: [x]\n" + RULE + "    condition: a and not a\n",
        [
            "6:16: condition can never match: it needs a term both present and absent "
            "(check the 'not' parts)"
        ],
    ),
    (
        "all of an empty list",
        "lists:\n  a: []\n" + RULE + "    condition: all of a\n",
        ["6:23: list 'a' is empty, so this can never match (add terms to the list)"],
    ),
    (
        "NEAR out of range",
        "lists:\n  a: [x]\n" + RULE + "    condition: a NEAR/99 a\n",
        ["6:18: NEAR distance must be between 1 and 50 (got 99)"],
    ),
    (
        "upper-case keyword",
        "lists:\n  a: [x]\n" + RULE + '    condition: "a AND a"\n',
        ["6:19: condition syntax error at 'AND' (keywords are lower-case: and, or, not)"],
    ),
    (
        "syntax error inside a block scalar",
        "lists:\n  a: [x]\n" + RULE + "    condition: |\n      a and\n        (a or )\n",
        ["8:15: condition syntax error at ')'"],
    ),
    (
        "RE2 refuses lookaround and backreferences",
        "lists:\n  a:\n    - regex: '(a)\\1'\n    - regex: 'x(?=y)'\n    - regex: '(?<!x)y'\n",
        [
            "3:7: regex '(a)\\1' is not valid RE2: backreferences are not supported "
            "(invalid escape sequence: \\1) "
            "(RE2 runs in linear time and has no lookaround or backreferences)",
            "4:7: regex 'x(?=y)' is not valid RE2: lookahead is not supported "
            "(invalid perl operator: (?=) "
            "(RE2 runs in linear time and has no lookaround or backreferences)",
            "5:7: regex '(?<!x)y' is not valid RE2: lookbehind is not supported "
            "(invalid perl operator: (?<!) "
            "(RE2 runs in linear time and has no lookaround or backreferences)",
        ],
    ),
    (
        "terms that normalise to nothing, misplaced wildcard",
        "lists:\n  a: ['---', 'ab*c']\n",
        [
            "2:7: term '---' has no letters or digits "
            "(phrases match words; use a regex: term for symbols)",
            "2:14: term 'ab*c': '*' is only allowed at the end "
            "(a prefix wildcard such as regulat* matches regulate, regulation, ...)",
        ],
    ),
    ("tabs", "lists:\n\ta: [x]\n", ["2:1: tab character in indentation (indent with spaces)"]),
    (
        "duplicate key",
        "lists:\n  a: [x]\n" + RULE + "    title: S\n    condition: a\n",
        ["6:5: duplicate key 'title' (first at line 5) (remove one of them)"],
    ),
    (
        "code-execution tag",
        "lists:\n  a: [!!python/object/apply:os.system ['ls']]\n",
        [
            "2:7: tag '!!python/object/apply:os.system' is not allowed in rule files "
            "(remove it: rule files hold plain strings, lists and mappings)"
        ],
    ),
    (
        "local list shadows a shared one",
        "lists:\n  a: [x]\n" + RULE + "    terms:\n      a: [y]\n    condition: a\n",
        ["7:7: local list 'a' shadows the shared list defined at {file}:2 (rename the local list)"],
    ),
    (
        "rule id",
        "rules:\n  - id: Bad Id\n    title: R\n    terms: {a: [x]}\n",
        [
            "2:9: id 'Bad Id' must be lower-case letters, digits, '-' and '_', "
            "starting with a letter or digit"
        ],
    ),
    (
        "list name",
        "lists:\n  Bad-Name: [x]\n",
        [
            "2:3: list name 'Bad-Name' must be lower-case letters, digits and '_', "
            "starting with a letter"
        ],
    ),
    (
        "YAML 1.1 boolean",
        RULE + "    enabled: yes\n    terms: {a: [x]}\n",
        ["4:14: enabled must be true or false (got 'yes')"],
    ),
    (
        "missing key",
        "rules:\n  - id: r\n    terms: {a: [x]}\n",
        ["2:5: missing required key 'title'"],
    ),
    (
        "alias bomb",
        "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
        [
            "5:26: more than 100000 values after expanding aliases "
            "(this looks like an alias bomb; remove repeated aliases)"
        ],
    ),
    (
        "bad indentation",
        RULE + "   terms: {a: [x]}\n",
        [
            "4:4: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block collection) "
            "(check the indentation of this line and the one before)"
        ],
    ),
    (
        "no condition and no terms",
        RULE,
        [
            "2:5: rule 'r' has no condition and no terms "
            "(add terms: (any term matches) or a condition:)"
        ],
    ),
    (
        "unknown field",
        RULE + "    fields: [titel]\n    terms: {a: [x]}\n",
        [
            "4:14: each item of fields must be one of title, summary, lead, front, content, "
            "author, categories, domain, feed, tags (got 'titel')"
        ],
    ),
    (
        "unknown scope field",
        "lists:\n  a: [x]\n" + RULE + "    condition: titel:a\n",
        [
            "6:16: unknown field 'titel' "
            "(fields: title, summary, lead, front, content, author, categories, domain, feed, "
            "tags)"
        ],
    ),
    (
        "phrase and regex in one term",
        "lists:\n  a:\n    - phrase: x\n      regex: y\n",
        ["3:7: a term needs exactly one of 'phrase' or 'regex'"],
    ),
    (
        "two documents",
        "lists: {}\n---\nrules: []\n",
        ["2:1: only one YAML document per rule file (remove the '---' line or split the file)"],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [case[1:] for case in ERROR_CASES], ids=[case[0] for case in ERROR_CASES]
)
def test_error(tmp_path: Path, body: str, expected: list[str]) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(body, encoding="utf-8")
    load = load_rules(file)
    assert [str(problem) for problem in load.problems] == [
        f"{file}:" + line.format(file=file) for line in expected
    ]
    assert not load.ok
    assert load.ruleset.rules == ()


def test_file_size_cap(tmp_path: Path) -> None:
    file = tmp_path / "big.yaml"
    file.write_text("# " + "x" * (1024 * 1024) + "\n", encoding="utf-8")
    (problem,) = load_rules(file).problems
    assert str(problem) == (
        f"{file}:1:1: file is 1048579 bytes, over the 1048576 byte limit "
        "(split it into several files)"
    )


def test_yaml_12_scalars_stay_strings(tmp_path: Path) -> None:
    file = tmp_path / "r.yaml"
    file.write_text(
        "lists:\n  odd: [NO, on, 0755, '1:30', 1:30, yes, 3.0]\n"
        "rules:\n  - id: '0755'\n    title: 2024\n    condition: odd\n    enabled: true\n",
        encoding="utf-8",
    )
    load = load_rules(file)
    assert load.ok, load.problems
    (rule,) = load.ruleset.rules
    assert (rule.id, rule.title, rule.enabled) == ("0755", "2024", True)
    assert [term.text for term in rule.lists["odd"]] == ["NO", "on", "0755", "1:30", "yes", "3.0"]


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


VENDORS = "lists:\n  vendors: [IBM, Amazon]\n"
EXIT = (
    "rules:\n  - id: exit\n    title: Vendor exit\n    terms:\n      halt: [moratorium]\n"
    "    condition: vendors and halt\n"
)
OTHER = "rules:\n  - id: other\n    title: Other\n    terms:\n      words: [zebra]\n"


def test_duplicates_across_files_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", VENDORS + EXIT)
    second = write(tmp_path, "b.yaml", VENDORS + EXIT)
    assert [str(problem) for problem in load_rules(tmp_path).problems] == [
        f"{second}:2:3: list 'vendors' is already defined at {first}:2 "
        "(list names are shared by every rule file; rename one)",
        f"{second}:4:9: rule id 'exit' is already used at {first}:4 "
        "(rule ids are unique across all rule files)",
    ]


def test_unused_shared_list_is_a_warning(tmp_path: Path) -> None:
    lists = write(tmp_path, "lists/v.yaml", VENDORS + "  unused: [x]\n")
    write(tmp_path, "exit.yaml", EXIT)
    load = load_rules(tmp_path)
    assert load.ok
    assert [str(problem) for problem in load.problems] == [
        f"{lists}:3:3: warning: list 'unused' is not used by any rule"
    ]


def test_broken_file_does_not_take_down_other_files(tmp_path: Path) -> None:
    write(tmp_path, "lists/v.yaml", VENDORS)
    write(tmp_path, "exit.yaml", EXIT)
    broken = write(tmp_path, "other.yaml", OTHER.replace("title: Other", "title: [Other"))
    load = load_rules(tmp_path)
    assert not load.ok
    assert [problem.file for problem in load.problems] == [str(broken)]
    assert [rule.id for rule in load.ruleset.rules] == ["exit"]
    assert set(load.files) == {
        str(tmp_path / "lists/v.yaml"),
        str(tmp_path / "exit.yaml"),
        str(broken),
    }


def test_rule_using_a_list_from_a_broken_list_file_is_reported(tmp_path: Path) -> None:
    # Only the broken list is out: rules using the file's other lists still load.
    lists = write(tmp_path, "lists/v.yaml", VENDORS + "  bad: [~]\n")
    write(tmp_path, "exit.yaml", EXIT)
    rules = write(tmp_path, "bad.yaml", EXIT.replace("exit", "uses-bad").replace("vendors", "bad"))
    write(tmp_path, "other.yaml", OTHER)
    load = load_rules(tmp_path)
    assert [str(problem) for problem in load.problems] == [
        f"{lists}:3:9: term must be a string (got nothing) "
        "(quote this value: an empty value or text after ' #' reads as nothing)",
        f"{rules}:6:16: rule 'uses-bad' is left out: list 'bad' has errors "
        f"(first at {lists}:3:9) (fix the list and the rules that use it load again)",
    ]
    assert [rule.id for rule in load.ruleset.rules] == ["exit", "other"]


def test_previous_load_keeps_the_last_good_version_of_a_broken_file(tmp_path: Path) -> None:
    write(tmp_path, "lists/v.yaml", VENDORS)
    rules = write(tmp_path, "exit.yaml", EXIT)
    write(tmp_path, "other.yaml", OTHER)
    first = load_rules(tmp_path)
    assert first.ok and [rule.id for rule in first.ruleset.rules] == ["exit", "other"]

    rules.write_text(EXIT.replace("vendors and halt", "vendors and halt and"), encoding="utf-8")
    second = load_rules(tmp_path, previous=first)
    assert [str(problem) for problem in second.problems] == [
        f"{rules}:6:36: condition ends too early (check for a missing operand or ')')"
    ]
    assert [rule.id for rule in second.ruleset.rules] == ["exit", "other"]
    assert second.files[str(rules)] != first.files[str(rules)]
    article = Article("f", "e", "IBM announces a moratorium", datetime(2024, 1, 1, tzinfo=UTC))
    assert [match.rule_id for match in match_article(second.ruleset, article)] == ["exit"]

    # Still broken on the next reload: the last good version is still the first one.
    third = load_rules(tmp_path, previous=second)
    assert [rule.id for rule in third.ruleset.rules] == ["exit", "other"]
    # Without a previous load the broken file's rules are left out.
    assert [rule.id for rule in load_rules(tmp_path).ruleset.rules] == ["other"]


def test_previous_version_of_an_unreadable_list_file_still_serves_its_lists(
    tmp_path: Path,
) -> None:
    lists = write(tmp_path, "lists/v.yaml", VENDORS)
    write(tmp_path, "exit.yaml", EXIT)
    first = load_rules(tmp_path)
    lists.write_text("lists:\n\tvendors: [IBM]\n", encoding="utf-8")
    second = load_rules(tmp_path, previous=first)
    assert [str(problem) for problem in second.problems] == [
        f"{lists}:2:1: tab character in indentation (indent with spaces)"
    ]
    assert [rule.id for rule in second.ruleset.rules] == ["exit"]


def test_missing_rules_folder(tmp_path: Path) -> None:
    load = load_rules(tmp_path / "nope")
    assert [str(problem) for problem in load.problems] == [
        f"{tmp_path / 'nope'}:1:1: no such file or folder (set MONITOR_RULES to the rules folder)"
    ]


def test_a_reload_reuses_files_that_did_not_change(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("rules:\n  - id: a\n    title: A\n    terms:\n      t: [x]\n")
    (tmp_path / "b.yaml").write_text("rules:\n  - id: b\n    title: B\n    terms:\n      t: [y]\n")
    first = load_rules(tmp_path)
    (tmp_path / "b.yaml").write_text("rules:\n  - id: b\n    title: B2\n    terms:\n      t: [z]\n")
    second = load_rules(tmp_path, previous=first)
    a, b = str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")
    assert second.last_good[a] is first.last_good[a]
    assert second.last_good[b] is not first.last_good[b]
    assert [rule.title for rule in second.ruleset.rules] == ["A", "B2"]
    assert second.files[a] == first.files[a] and second.files[b] != first.files[b]


TRICKY_YAML = """\
lists:
  plain:
    - NO
    - on
    - 0755
    - 1:30
    - ~
    - ""
    - 'single'
    - "double \\u00e9"
  anchored: &shared
    - one
    - two
  block: |
    literal text
  folded: >-
    folded
    text
rules:
  - id: r
    condition: a and b
    terms: {a: *shared, b: [x]}
"""


@pytest.mark.parametrize(
    "name", ["tricky", *sorted(p.name for p in (ROOT / "rules").glob("*.yaml"))]
)
def test_libyaml_reads_rule_files_as_the_pure_parser_does(name: str) -> None:
    # read_yaml takes libyaml's events when ruamel.yaml.clib is installed (it is a dependency);
    # values, positions and scalar styles must be what the pure parser gives.
    from ruamel.yaml import YAML

    from monitor.matching.yamlsource import _read

    assert YAML(typ="safe", pure=False).Parser.__name__ == "CParser"  # libyaml is installed
    text = TRICKY_YAML if name == "tricky" else (ROOT / "rules" / name).read_text()
    fast, slow = _read(text, pure=False), _read(text, pure=True)
    assert fast[0] == slow[0]
    assert (fast[1].values, fast[1].keys, fast[1].scalars) == (
        slow[1].values,
        slow[1].keys,
        slow[1].scalars,
    )
