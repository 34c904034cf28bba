"""What `monitor rules check` tells a new author (issue #8): every problem at once, the cause
before what it causes, hints that name the real fix, and a bad rule leaves out only itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.live_rules import LiveRules
from monitor.matching import load_rules, match_article
from monitor.model import Article

RULE = "rules:\n  - id: r\n    title: R\n"
LISTS = "lists:\n  a: [alpha]\n  b: [beta]\n"


def check(path: Path) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["rules", "check", str(path)], catch_exceptions=False)
    return result.exit_code, result.stdout.splitlines()


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


HINT_CASES = [
    (
        "duplicate key and unknown key are reported together",
        RULE + "    title: S\n    chanel: x\n    terms: {a: [x]}\n",
        [
            "4:5: duplicate key 'title' (first at line 3) (remove one of them)",
            "5:5: unknown key 'chanel' (did you mean 'channel'?)",
        ],
    ),
    (
        "double-quoted regex",
        'lists:\n  a:\n    - regex: "\\d+"\n',
        [
            "3:16: invalid YAML: found unknown escape character 'd' "
            "(while scanning a double-quoted scalar) (write regexes in single quotes: '\\d+' "
            "(in double quotes a backslash starts a YAML escape))"
        ],
    ),
    (
        "double-quoted regex that YAML reads without complaint",
        'lists:\n  a:\n    - regex: "\\bban\\b"\n',
        [
            "3:14: regex '\\x08ban\\x08' holds a control character: in double quotes YAML "
            "reads \\b as a backspace (write regexes in single quotes)"
        ],
    ),
    (
        "condition starting with a quoted phrase",
        LISTS + RULE + '    condition: "stop selling" and a\n',
        [
            "7:31: invalid YAML: expected <block end>, but found '<scalar>' "
            "(while parsing a block mapping) (quote the whole value with single quotes: "
            "condition: '\"stop selling\" and a')"
        ],
    ),
    (
        "over-indented key",
        RULE + "      severity: high\n    terms: {a: [x]}\n",
        [
            "4:15: invalid YAML: mapping values are not allowed here "
            "('severity' is indented 6 spaces but 'title' on line 3 is at 4: "
            "give the keys of one mapping the same indentation)"
        ],
    ),
    (
        "rule item one space short",
        "rules:\n - id: r\n    title: R\n    terms: {a: [x]}\n",
        [
            "3:10: invalid YAML: mapping values are not allowed here "
            "('title' is indented 4 spaces but 'id' on line 2 is at 3: "
            "give the keys of one mapping the same indentation)"
        ],
    ),
    (
        "key one space short, YAML fails after the value of the key above",
        "lists:\n  a:\n    - one\n    - two\n    - three\n b:\n    - x\n",
        [
            "6:2: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block mapping) ('b' is indented 1 space but 'a' on line 2 is "
            "at 2: give the keys of one mapping the same indentation)"
        ],
    ),
    (
        "list item one space too deep",
        "lists:\n  a:\n    - one\n     - two\n    - three\n",
        [
            "4:6: list item is indented more than the item before it, so YAML reads it as "
            "more of that item's text (indent it like the item above it (4 spaces))"
        ],
    ),
    (
        "first list item one space short, YAML fails many lines later",
        "lists:\n  a:\n   - one\n    - two\n    - three\n    - four\n    - five\n  b:\n    - x\n",
        [
            "3:4: list item is indented less than the item after it, so YAML reads the items "
            "below it as more of its text (indent it like the items below it (4 spaces))"
        ],
    ),
    (
        "first list item one space short, YAML reads one long phrase",
        "lists:\n  a:\n   - one\n    - two\n    - three\n",
        [
            "3:4: list item is indented less than the item after it, so YAML reads the items "
            "below it as more of its text (indent it like the items below it (4 spaces))"
        ],
    ),
    (
        "NEAR with a group on the left",
        LISTS + RULE + "    condition: NEAR/8 (a or b)\n",
        [
            "7:16: NEAR/8 needs a list name or a quoted phrase on each side "
            "(NEAR does not take a group: write one NEAR per list, (a NEAR/8 b) or "
            "(a NEAR/8 c), or put the terms in one list)"
        ],
    ),
    (
        "NEAR with a group on the right",
        LISTS + RULE + "    condition: a NEAR/8 (a or b)\n",
        [
            "7:25: NEAR/8 needs a list name or a quoted phrase on each side (got '(a' after it) "
            "(NEAR does not take a group: write one NEAR per list, (a NEAR/8 b) or "
            "(a NEAR/8 c), or put the terms in one list)"
        ],
    ),
    (
        "lower-case near",
        LISTS + RULE + "    condition: a near/8 b\n",
        [
            "7:18: 'near/8' must be upper-case: NEAR/8 "
            "(NEAR/n and BEFORE/n are upper-case; and, or, not are lower-case)"
        ],
    ),
    (
        "extra closing parenthesis",
        LISTS + RULE + "    condition: (a or b))\n",
        ["7:24: unmatched ')' at column 9 of the condition (remove it or add the '(' it closes)"],
    ),
    (
        "parenthesis never closed",
        LISTS + RULE + "    condition: a and (b or a\n",
        [
            "7:22: '(' at column 7 of the condition is never closed "
            "(add the ')' that ends the group)"
        ],
    ),
    (
        "a local list whose only regex is refused is not also called empty",
        RULE + "    terms:\n      t:\n        - regex: 'x(?=y)'\n    condition: t\n",
        [
            "6:11: regex 'x(?=y)' is not valid RE2: lookahead is not supported "
            "(invalid perl operator: (?=) "
            "(RE2 runs in linear time and has no lookaround or backreferences)"
        ],
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [case[1:] for case in HINT_CASES], ids=[case[0] for case in HINT_CASES]
)
def test_rules_check_message(tmp_path: Path, body: str, expected: list[str]) -> None:
    file = write(tmp_path, "r.yaml", body)
    code, lines = check(file)
    assert (code, lines) == (1, [f"{file}:{line}" for line in expected])


def test_a_broken_shared_list_is_reported_first_and_its_users_folded(tmp_path: Path) -> None:
    lists = write(tmp_path, "lists/l.yaml", "lists:\n  bad:\n    - regex: 'x(?=y)'\n  good: [y]\n")
    for number in range(1, 10):
        body = f"rules:\n  - id: u{number}\n    title: U\n    condition: bad and good\n"
        write(tmp_path, f"fr-{number}.yaml", body)
    ok = write(tmp_path, "fr-ok.yaml", "rules:\n  - id: ok\n    title: OK\n    condition: good\n")
    code, lines = check(tmp_path)
    assert (code, lines) == (
        1,
        [
            f"{lists}:3:7: regex 'x(?=y)' is not valid RE2: lookahead is not supported "
            "(invalid perl operator: (?=) "
            "(RE2 runs in linear time and has no lookaround or backreferences)",
            f"{tmp_path}/fr-1.yaml:4:16: rule 'u1' is left out: list 'bad' has errors "
            f"(first at {lists}:3:7) (and 8 more rules that use list 'bad') "
            "(fix the list and the rules that use it load again)",
        ],
    )
    assert [rule.file for rule in load_rules(tmp_path).ruleset.rules] == [str(ok)]


FILE_WITH_ONE_BAD_RULE = (
    "lists:\n  good: [moratorium]\n  bad:\n    - regex: 'x(?=y)'\n"
    "rules:\n"
    "  - id: fine\n    title: Fine\n    condition: good\n"
    "  - id: broken\n    title: Broken\n    condition: bad or good\n"
    "  - id: typo\n    title: Typo\n    chanel: x\n    condition: good\n"
    "  - id: also-fine\n    title: Also fine\n    terms: {t: [ban]}\n"
)


def test_a_bad_rule_leaves_out_only_itself(tmp_path: Path) -> None:
    file = write(tmp_path, "r.yaml", FILE_WITH_ONE_BAD_RULE)
    load = load_rules(file)
    assert [rule.id for rule in load.ruleset.rules] == ["fine", "also-fine"]
    assert [str(problem) for problem in load.problems] == [
        f"{file}:4:7: regex 'x(?=y)' is not valid RE2: lookahead is not supported "
        "(invalid perl operator: (?=) "
        "(RE2 runs in linear time and has no lookaround or backreferences)",
        f"{file}:14:5: unknown key 'chanel' (did you mean 'channel'?)",
        f"{file}:11:16: rule 'broken' is left out: list 'bad' has errors (first at {file}:4:7) "
        "(fix the list and the rules that use it load again)",
    ]


def test_the_service_starts_with_the_good_rules_of_a_file_with_a_bad_rule(
    tmp_path: Path,
) -> None:
    notices: list[str] = []
    write(tmp_path, "r.yaml", FILE_WITH_ONE_BAD_RULE)
    live = LiveRules(tmp_path, on_problems=notices.append)
    assert [rule.id for rule in live.ruleset.rules] == ["fine", "also-fine"]
    assert notices[0].splitlines()[0] == (
        f"3 rule error(s) in {tmp_path}; the rules they break are left out (2 rules running):"
    )


def test_hot_reload_loads_the_good_rules_of_a_file_and_keeps_a_broken_rule(
    tmp_path: Path,
) -> None:
    good = FILE_WITH_ONE_BAD_RULE.replace("x(?=y)", "xy").replace("    chanel: x\n", "")
    file = write(tmp_path, "r.yaml", good)
    live = LiveRules(tmp_path)
    assert [rule.id for rule in live.ruleset.rules] == ["fine", "broken", "typo", "also-fine"]
    # One rule breaks while another changes: the change is taken, the broken rule keeps
    # its last good version.
    file.write_text(
        good.replace("condition: bad or good", "condition: bad or good)").replace(
            "[ban]", "[ban, halt]"
        ),
        encoding="utf-8",
    )
    assert live.refresh() is True
    assert [rule.id for rule in live.ruleset.rules] == ["fine", "broken", "typo", "also-fine"]
    article = Article("f", "e", "Council votes a halt", datetime(2024, 1, 1, tzinfo=UTC))
    assert [match.rule_id for match in match_article(live.ruleset, article)] == ["also-fine"]
    assert [str(problem) for problem in live.current.errors] == [
        f"{file}:11:27: unmatched ')' at column 12 of the condition "
        "(remove it or add the '(' it closes)"
    ]


SHIPPED = Path(__file__).resolve().parent.parent / "rules"


def test_one_file_of_the_shipped_pack_is_checked_with_its_lists() -> None:
    file = SHIPPED / "fr-bans-and-laws.yaml"
    assert check(file) == (0, [f"{file}: 3 rules in 1 files, 0 warning(s), examples pass"])


def test_one_file_is_checked_with_the_lists_of_the_folder_above_it(tmp_path: Path) -> None:
    write(tmp_path, "lists/v.yaml", "lists:\n  vendors: [IBM]\n")
    other = write(tmp_path, "other.yaml", "rules:\n  - id: o\n    title: O\n    chanel: x\n")
    file = write(
        tmp_path, "fr/one.yaml", "rules:\n  - id: one\n    title: One\n    condition: vendors\n"
    )
    assert check(file) == (0, [f"{file}: 1 rules in 1 files, 0 warning(s), examples pass"])
    assert other.exists()  # its problems belong to a check of the folder, not of this file


def test_a_list_no_file_defines_says_where_it_was_looked_for(tmp_path: Path) -> None:
    body = "".join(
        f"  - id: r{number}\n    title: R\n    condition: vendors\n" for number in range(2)
    )
    file = write(tmp_path, "alone.yaml", "rules:\n" + body)
    assert check(file) == (
        1,
        [
            f"{file}:4:16: unknown list 'vendors' (and 1 more rule that uses list 'vendors') "
            f"(no file under {tmp_path} defines it)"
        ],
    )
